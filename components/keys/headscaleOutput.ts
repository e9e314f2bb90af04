// Reading headscale's `-o json` output. 0.29 prints Go's JSON of its protobuf types:
// snake_case fields, timestamps as {seconds, nanos}, numbers as numbers, and false or empty
// fields left out. The unreleased 0.30 prints protojson: camelCase, RFC 3339 timestamps and
// 64-bit ids as strings. Both are accepted; anything else fails with the output quoted, keys
// redacted. Pure: no Pulumi.

export interface PreauthKey {
    readonly id: string;
    readonly key: string;
    /** ISO 8601, UTC. */
    readonly expiration: string;
    readonly reusable: boolean;
    readonly ephemeral: boolean;
    readonly tags: string[];
}

export interface HeadscaleUser {
    readonly id: string;
    readonly name: string;
}

export interface NodeRoutes {
    readonly id: string;
    readonly name: string;
    readonly givenName: string;
    readonly approved: string[];
    readonly available: string[];
}

export class HeadscaleOutputError extends Error {}

type Json = Record<string, unknown>;

/** The output of `headscale preauthkeys create -o json`. */
export function parsePreauthKey(stdout: string): PreauthKey {
    const o = object(parse(stdout, "preauthkeys create"), stdout, "preauthkeys create");
    const key = field(o, "key");
    if (typeof key !== "string" || key.length < 16) fail("preauthkeys create", stdout, 'no "key" in it');
    const tags = field(o, "acl_tags", "aclTags") ?? [];
    return {
        id: id(field(o, "id"), stdout, "preauthkeys create"),
        key,
        expiration: timestamp(field(o, "expiration"), stdout, "preauthkeys create"),
        reusable: field(o, "reusable") === true,
        ephemeral: field(o, "ephemeral") === true,
        tags: Array.isArray(tags) ? tags.map(String) : [],
    };
}

/** The output of `headscale users list -o json`. */
export function parseUsers(stdout: string): HeadscaleUser[] {
    const list = parse(stdout, "users list");
    if (!Array.isArray(list)) fail("users list", stdout, "expected a list");
    return list.map((u) => {
        const o = object(u, stdout, "users list");
        const name = field(o, "name");
        if (typeof name !== "string") fail("users list", stdout, "a user without a name");
        return { id: id(field(o, "id"), stdout, "users list"), name };
    });
}

/** The output of `headscale nodes list-routes -o json`. */
export function parseNodeRoutes(stdout: string): NodeRoutes[] {
    const list = parse(stdout, "nodes list-routes");
    if (!Array.isArray(list)) fail("nodes list-routes", stdout, "expected a list");
    const strings = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
    return list.map((n) => {
        const o = object(n, stdout, "nodes list-routes");
        return {
            id: id(field(o, "id"), stdout, "nodes list-routes"),
            name: String(field(o, "name") ?? ""),
            givenName: String(field(o, "given_name", "givenName") ?? ""),
            approved: strings(field(o, "approved_routes", "approvedRoutes")),
            available: strings(field(o, "available_routes", "availableRoutes")),
        };
    });
}

/** The output with every preauth key replaced by [redacted], for messages. */
export function redactKeys(text: string): string {
    return text
        .replace(/("key"\s*:\s*")[^"]*(")/g, "$1[redacted]$2")
        .replace(/hskey-[A-Za-z0-9_-]+/g, "[redacted]")
        .replace(/\b[A-Za-z0-9_-]{40,}\b/g, "[redacted]");
}

function parse(stdout: string, what: string): unknown {
    try {
        return JSON.parse(stdout);
    } catch {
        return fail(what, stdout, "it is not JSON");
    }
}

function object(value: unknown, stdout: string, what: string): Json {
    if (value === null || typeof value !== "object" || Array.isArray(value)) fail(what, stdout, "expected a JSON object");
    return value as Json;
}

function field(o: Json, ...names: string[]): unknown {
    for (const n of names) if (n in o) return o[n];
    return undefined;
}

function id(value: unknown, stdout: string, what: string): string {
    if (typeof value === "number" && Number.isSafeInteger(value) && value > 0) return String(value);
    if (typeof value === "string" && /^[1-9][0-9]*$/.test(value)) return value;
    return fail(what, stdout, 'no numeric "id" in it');
}

function timestamp(value: unknown, stdout: string, what: string): string {
    if (typeof value === "string" && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString();
    if (value && typeof value === "object" && "seconds" in value) {
        const { seconds, nanos } = value as { seconds: unknown; nanos?: unknown };
        const s = Number(seconds);
        if (Number.isFinite(s)) return new Date(s * 1000 + Math.floor(Number(nanos ?? 0) / 1e6)).toISOString();
    }
    return fail(what, stdout, 'no readable "expiration" in it');
}

function fail(what: string, stdout: string, why: string): never {
    const shown = redactKeys(stdout.trim()).slice(0, 600);
    throw new HeadscaleOutputError(`Unexpected output from \`headscale ${what}\` (${why}): ${shown || "(nothing)"}`);
}
