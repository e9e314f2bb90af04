// Writing a preauth key into a GitHub Actions secret: the command line that runs
// store-github-secret.sh with the key on stdin. Pure: no Pulumi.
import * as fs from "node:fs";
import * as path from "node:path";
import { commandLine } from "../shell";

export interface GithubSecret {
    /** owner/name */
    readonly repository: string;
    /** The Actions secret, e.g. TAILNET_CI_AUTHKEY. */
    readonly name: string;
}

/** The environment variable the store reads its token from (the workflow sets it from the secret of that name). */
export const keyWriterTokenVariable = "TAILNET_KEY_WRITER_TOKEN";

/** The line the store prints when it could not store a key; the failure issue looks for it. */
export const notStoredMarker = "overlay-key-store: the new key was not stored";

export const storeSecretScript = fs.readFileSync(path.join(__dirname, "scripts", "store-github-secret.sh"), "utf8");

/**
 * `bash --norc --noprofile -c SCRIPT store-github-secret OWNER/REPO SECRET`: the script travels
 * in the command line (stdin carries the key), so the command is the same on every machine that
 * runs the program; no rc file of the machine's runs before it.
 */
export function storeSecretCommand(secret: GithubSecret): string {
    return commandLine(["bash", "--norc", "--noprofile", "-c", storeSecretScript, "store-github-secret", secret.repository, secret.name]);
}
