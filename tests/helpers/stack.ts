// The example stack's config as the Pulumi CLI would hand it to the program, with the one
// secret it lacks filled in, plus a way to derive variants of it for tests.
import * as path from "node:path";
import { RawConfig } from "../../config";
import { placeholderKeypair } from "../../plan/placeholderKeys";
import { readStackFile } from "../../plan/stackFile";

export const repoRoot = path.resolve(__dirname, "..", "..");
export const project = "overlay";

/** A private key that stands for the user's real one; tests check it never leaks. */
export const testSshKey = placeholderKeypair("tests: vps ssh key").privateKeyPem;

export interface Variant {
    /** Short key → value; strings are passed as-is, anything else as JSON (as the CLI does). */
    readonly set?: Record<string, unknown>;
    readonly unset?: string[];
    /** Short keys whose values are stored as secrets. */
    readonly secret?: string[];
}

export function exampleConfig(variant: Variant = {}): RawConfig {
    const file = readStackFile(repoRoot, "home");
    const values: Record<string, string> = { ...file.values, [`${project}:vpsSshPrivateKey`]: testSshKey };
    const secretKeys = new Set([...file.secretKeys, `${project}:vpsSshPrivateKey`]);
    for (const [key, value] of Object.entries(variant.set ?? {})) {
        values[`${project}:${key}`] = typeof value === "string" ? value : JSON.stringify(value);
    }
    for (const key of variant.unset ?? []) delete values[`${project}:${key}`];
    for (const key of variant.secret ?? []) secretKeys.add(`${project}:${key}`);
    if (variant.set && "vpsSshPrivateKey" in variant.set && !(variant.secret ?? []).includes("vpsSshPrivateKey")) {
        secretKeys.delete(`${project}:vpsSshPrivateKey`);
    }
    return { project, values, secretKeys };
}
