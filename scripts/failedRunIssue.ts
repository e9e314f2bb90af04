// The body of the issue the scheduled workflow opens when its run failed: the run, the router
// key's expiry, and for each key the run could not store in its GitHub secret, which key the
// secret still holds, until when, and what a person must do. Everything comes from the run's
// log (the store's one-line message) and the stack outputs without --show-secrets: no key.
// Usage: tsx scripts/failedRunIssue.ts RUN_URL UP_LOG OUTPUTS_JSON
import * as fs from "node:fs";
import { keyWriterTokenVariable, notStoredMarker } from "../components/keys/githubSecret";

interface StoredKeyOutput {
    repository: string;
    secret: string;
    keyId: string;
    expires: string;
}

const day = (iso: string) => iso.slice(0, 10);
const when = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

export function failedRunIssue(runUrl: string, log: string, outputs: Record<string, unknown>): string {
    const lines = [`The scheduled \`pulumi up\` failed: ${runUrl}`, ""];
    const routerExpires = typeof outputs.routerKeyExpires === "string" ? outputs.routerKeyExpires : "";
    lines.push(routerExpires
        ? `The router key expires on ${when(routerExpires)}, or later if this run renewed it before it failed (stack output \`routerKeyExpires\`).`
        : "The stack output `routerKeyExpires` could not be read.");

    // The store's line, wherever pulumi's output puts it (as the command's stderr, in the
    // error), with a real secret and repository: the error also quotes the script's source.
    const storeLine = new RegExp(`${notStoredMarker} in the secret [A-Za-z_][A-Za-z0-9_]* of [A-Za-z0-9-]+/[A-Za-z0-9._-]+: [^"\\\\]*$`);
    const notStored = [...new Set(log.split("\n").map((l) => l.slice(Math.max(0, l.indexOf(notStoredMarker))).trim()).filter((l) => storeLine.test(l)))];
    if (notStored.length === 0) return `${lines.join("\n")}\n`;

    const stored = Object.values((outputs.githubSecretKeys ?? {}) as Record<string, StoredKeyOutput>);
    lines.push("", "### A new key was not stored in its GitHub secret", "", ...notStored.map((l) => `    ${l}`), "");
    for (const line of notStored) {
        const [, secret, repository] = / the secret (\S+) of (\S+?):/.exec(line) ?? [];
        const key = stored.find((k) => k.secret === secret && k.repository === repository);
        lines.push(key
            ? `The secret \`${key.secret}\` of ${key.repository} still holds key ${key.keyId}, which expires on ${when(key.expires)}. ` +
              "Runners join the tailnet with it until then: a key is expired only once the key that replaces it is stored."
            : `The stack has not stored a key in the secret \`${secret}\` of ${repository} yet.`);
        lines.push("", `**To do${key ? `, before ${day(key.expires)}` : ""}:** create a fine-grained personal access token with access to ${repository} only ` +
            'and one permission, "Secrets: Read and write", and save it as the repository secret ' +
            `\`${keyWriterTokenVariable}\` (replace it if it has expired). Then run the workflow again (\`gh workflow run rotate.yml\`) ` +
            "or leave it to the next weekly run: it stores the new key, and only then expires the old one.", "");
    }
    return `${lines.join("\n").trimEnd()}\n`;
}

if (require.main === module) {
    const [runUrl, logPath, outputsPath] = process.argv.slice(2);
    if (!runUrl || !logPath || !outputsPath) {
        console.error("usage: tsx scripts/failedRunIssue.ts RUN_URL UP_LOG OUTPUTS_JSON");
        process.exit(2);
    }
    const log = fs.existsSync(logPath) ? fs.readFileSync(logPath, "utf8") : "";
    let outputs: Record<string, unknown> = {};
    try {
        outputs = JSON.parse(fs.readFileSync(outputsPath, "utf8")) as Record<string, unknown>;
    } catch {
        // an empty table: the issue says the outputs could not be read
    }
    process.stdout.write(failedRunIssue(runUrl, log, outputs));
}
