// Property values as the Pulumi SDK sends them to the engine: plain JSON plus "signature"
// objects for secrets, unknowns, assets and resource references. These helpers show such
// values without their secrets, and hash them stably with their secrets.
import { createHash } from "node:crypto";

// Signature keys and values from the Pulumi wire format (sdk/nodejs/runtime/rpc.ts).
const sigKey = "4dabf18193072939515e22adb298388d";
const sig = {
    secret: "1b47061264138c4ac30d75fd1eb44270",
    asset: "c44067f5952c0a294b673a41bacd8c17",
    archive: "0def7320c3a5731c473e5ecbe6d01bc7",
    resourceReference: "5cf8f73096256a8f31e491e813e4eb8e",
    outputValue: "d0e6a833031e9bbcd3f4e8bde6ca49a4",
};
const unknownValue = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export const SECRET = "[secret]";
export const UNKNOWN = "(known after pulumi up)";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Shown {
    /** The value with every secret replaced by "[secret]". */
    readonly value: Json;
    /** Paths of the secrets that were replaced, e.g. "connection.privateKey". */
    readonly secretPaths: string[];
}

/** Replaces secrets by "[secret]" and decodes the other signature objects into plain JSON. */
export function showValue(value: unknown): Shown {
    const secretPaths: string[] = [];
    const walk = (v: unknown, path: string): Json => {
        if (v === unknownValue) return UNKNOWN;
        if (Array.isArray(v)) return v.map((item, i) => walk(item, `${path}[${i}]`));
        if (v === null || typeof v !== "object") return v as Json;
        const o = v as Record<string, unknown>;
        switch (o[sigKey]) {
            case sig.secret:
                secretPaths.push(path);
                return SECRET;
            case sig.outputValue:
                if (o.secret) {
                    secretPaths.push(path);
                    return SECRET;
                }
                return "value" in o ? walk(o.value, path) : UNKNOWN;
            case sig.asset:
            case sig.archive:
                return walk(Object.fromEntries(Object.entries(o).filter(([k]) => k !== sigKey)), path);
            case sig.resourceReference:
                return `resource ${String(o.urn)}`;
        }
        return Object.fromEntries(Object.keys(o).sort().map((k) => [k, walk(o[k], path ? `${path}.${k}` : k)]));
    };
    return { value: walk(value, ""), secretPaths };
}

/**
 * The value with secrets unwrapped. Only for reading named fields that are not sensitive
 * but travel inside a secret (an SSH connection's host, a Secret's key names).
 */
export function unwrapSecrets(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (value === null || typeof value !== "object") return value;
    const o = value as Record<string, unknown>;
    if (o[sigKey] === sig.secret) return unwrapSecrets(o.value);
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, unwrapSecrets(v)]));
}

/**
 * A stable SHA-256 of a property value, secrets included. Each secret is hashed on its
 * own first, so the digest changes when a secret changes but never carries the secret.
 */
export function hashValue(value: unknown): string {
    return sha256(canonical(value));
}

function canonical(v: unknown): string {
    if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
    if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
    const o = v as Record<string, unknown>;
    if (o[sigKey] === sig.secret) return JSON.stringify({ secretSha256: sha256(canonical(o.value)) });
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(",")}}`;
}

function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}
