// Turns the stack's raw Pulumi config (all strings) into one validated object, or into the
// complete list of problems. Pure: no Pulumi runtime, so it runs before any resource exists.
import { z } from "zod";
import { ConfigValues, KeyName, KeySpec, keyNames, keys } from "./keys";
import { Cidr, cidrContains, cidrsOverlap, parseCidr } from "./net";

export type ProblemCode = "missing" | "invalid" | "conflict" | "unknown" | "not-secret";

export interface ConfigProblem {
    /** The key and path it is about, e.g. "overlay:lanRoutes[1]". */
    readonly key: string;
    /** The top-level key name, e.g. "lanRoutes". */
    readonly name: string;
    readonly code: ProblemCode;
    readonly message: string;
}

export type ValidationResult =
    | { readonly ok: true; readonly values: ConfigValues }
    | { readonly ok: false; readonly problems: ConfigProblem[] };

export interface RawConfig {
    /** Pulumi project name: the namespace of our keys ("overlay:hostname"). */
    readonly project: string;
    /** Every config value as Pulumi hands it to the program: full key → string. */
    readonly values: Readonly<Record<string, string>>;
    /** Full keys whose values are stored as secrets. */
    readonly secretKeys: ReadonlySet<string>;
}

/** The tailnet ranges tailscale clients accept; headscale's prefixes must lie inside them. */
const standardTailnetRanges = { ipv4: "100.64.0.0/10", ipv6: "fd7a:115c:a1e0::/48" };

/**
 * Validates the stack configuration.
 * @returns the decoded values, or every problem found (never just the first).
 */
export function validateConfig(raw: RawConfig): ValidationResult {
    const problems: ConfigProblem[] = [];
    const parsed: Partial<Record<KeyName, unknown>> = {};

    problems.push(...unknownKeys(raw));

    for (const name of keyNames) {
        const spec: KeySpec = keys[name];
        const fullKey = `${raw.project}:${name}`;
        const text = raw.values[fullKey];
        if (text === undefined && spec.default === undefined) {
            problems.push(missing(raw.project, name));
            continue;
        }
        // An empty value holds no secret: the real engine hands the program a secret key's
        // declared default ("") as plain config, on every stack that does not set the key.
        if (text !== undefined && text !== "" && spec.secret && !raw.secretKeys.has(fullKey)) {
            problems.push({
                key: fullKey,
                name,
                code: "not-secret",
                message: `${fullKey} is stored in plain text in the stack file; store it encrypted with \`pulumi config set --secret ${name} < FILE\``,
            });
            continue;
        }
        const value = text === undefined ? spec.default : decode(spec, text);
        const result = spec.schema.safeParse(value);
        if (result.success) {
            parsed[name] = result.data;
        } else {
            problems.push(...result.error.issues.map((issue) => invalid(raw.project, name, spec, value, issue)));
        }
    }

    problems.push(...crossChecks(raw.project, parsed));
    return problems.length === 0 ? { ok: true, values: parsed as ConfigValues } : { ok: false, problems };
}

/** Formats problems as the numbered list that `pulumi up` and the plan print. */
export function formatProblems(problems: readonly ConfigProblem[]): string {
    const noun = problems.length === 1 ? "problem" : "problems";
    return [
        `The stack configuration has ${problems.length} ${noun}; nothing was created or changed:`,
        ...problems.map((p, i) => `  ${i + 1}. ${p.message}`),
    ].join("\n");
}

// Pulumi passes every value as a string; arrays, objects, numbers and booleans as JSON text.
function decode(spec: KeySpec, text: string): unknown {
    if (spec.type === "string") return text;
    try {
        return JSON.parse(text);
    } catch {
        return text; // the schema then reports the wrong type, quoting the text
    }
}

function missing(project: string, name: KeyName): ConfigProblem {
    const spec: KeySpec = keys[name];
    const set = spec.secret ? `pulumi config set --secret ${name} < FILE` : `pulumi config set ${name} VALUE`;
    return {
        key: `${project}:${name}`,
        name,
        code: "missing",
        message: `${project}:${name} is required: ${spec.description} Set it with \`${set}\``,
    };
}

function invalid(project: string, name: KeyName, spec: KeySpec, value: unknown, issue: z.core.$ZodIssue): ConfigProblem {
    const path = `${project}:${name}${issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("")}`;
    const got = spec.secret ? "" : ` (got ${show(valueAt(value, issue.path))})`;
    const message = issue.code === "unrecognized_keys" ? `has unknown field(s) ${issue.keys.join(", ")}; ${userKeyFields}` : issue.message;
    return { key: path, name, code: "invalid", message: `${path} ${message}${got}` };
}

const userKeyFields = "allowed: name, user, tags, reusable, ephemeral, lifetimeDays";

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
    return path.reduce<unknown>((v, p) => (v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined), value);
}

function show(value: unknown): string {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function unknownKeys(raw: RawConfig): ConfigProblem[] {
    const prefix = `${raw.project}:`;
    return Object.keys(raw.values)
        .filter((k) => k.startsWith(prefix) && !(k.slice(prefix.length) in keys))
        .map((k) => {
            const name = k.slice(prefix.length);
            const guess = closestKey(name);
            const hint = guess ? `did you mean ${raw.project}:${guess}?` : "see the config reference in README.md";
            return { key: k, name, code: "unknown" as const, message: `${k} is not a setting of this project; ${hint}` };
        });
}

function closestKey(name: string): KeyName | undefined {
    let best: { key: KeyName; distance: number } | undefined;
    for (const key of keyNames) {
        const distance = editDistance(name.toLowerCase(), key.toLowerCase());
        if (distance <= 3 && (!best || distance < best.distance)) best = { key, distance };
    }
    return best?.key;
}

function editDistance(a: string, b: string): number {
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        const next = [i];
        for (let j = 1; j <= b.length; j++) {
            next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        }
        row = next;
    }
    return row[b.length];
}

// --- rules that relate several keys; each runs only when the keys it reads are valid ---

function crossChecks(project: string, v: Partial<Record<KeyName, unknown>>): ConfigProblem[] {
    const c = v as Partial<ConfigValues>;
    const problems: ConfigProblem[] = [];
    const problem = (name: KeyName, path: string, code: ProblemCode, message: string) =>
        problems.push({ key: `${project}:${name}${path}`, name, code, message: `${project}:${name}${path} ${message}` });
    const ref = (name: KeyName) => `${project}:${name}`;

    // The hard rule: only the LAN is reachable through the router, never a cluster subnet.
    if (c.lanRoutes) {
        const routes = c.lanRoutes.map((text) => parseCidr(text) as Cidr);
        const forbidden: { cidr: Cidr; what: string }[] = [
            ...(c.podCidrs ?? []).map((t, i) => ({ cidr: parseCidr(t) as Cidr, what: `the cluster pod CIDR ${t} (${ref("podCidrs")}[${i}])` })),
            ...(c.serviceCidrs ?? []).map((t, i) => ({ cidr: parseCidr(t) as Cidr, what: `the cluster service CIDR ${t} (${ref("serviceCidrs")}[${i}])` })),
            ...(c.tailnetIpv4Prefix ? [{ cidr: parseCidr(c.tailnetIpv4Prefix) as Cidr, what: `the tailnet prefix ${c.tailnetIpv4Prefix} (${ref("tailnetIpv4Prefix")})` }] : []),
            ...(c.tailnetIpv6Prefix ? [{ cidr: parseCidr(c.tailnetIpv6Prefix) as Cidr, what: `the tailnet prefix ${c.tailnetIpv6Prefix} (${ref("tailnetIpv6Prefix")})` }] : []),
        ];
        routes.forEach((route, i) => {
            const at = `[${i}]`;
            if (route.prefixLength === 0) {
                problem("lanRoutes", at, "conflict", `(${route.text}) is a default route, which would make the router an exit node; list LAN subnets only`);
                return;
            }
            for (const f of forbidden) {
                if (cidrsOverlap(route, f.cidr)) {
                    problem("lanRoutes", at, "conflict", `(${route.text}) overlaps ${f.what}; only LAN subnets may be advertised, never a cluster or tailnet range`);
                }
            }
            routes.slice(0, i).forEach((earlier, j) => {
                if (cidrsOverlap(route, earlier)) {
                    problem("lanRoutes", at, "conflict", `(${route.text}) overlaps ${ref("lanRoutes")}[${j}] (${earlier.text}); list each subnet once`);
                }
            });
        });
    }

    // Tailnet addresses must be ones tailscale clients accept, and must not collide with the
    // cluster: the router pod routes the tailnet prefix through tailscale0.
    for (const [name, family] of [["tailnetIpv4Prefix", "ipv4"], ["tailnetIpv6Prefix", "ipv6"]] as const) {
        const text = c[name];
        if (text === undefined) continue;
        const prefix = parseCidr(text) as Cidr;
        const standard = parseCidr(standardTailnetRanges[family]) as Cidr;
        if (!cidrContains(standard, prefix)) {
            problem(name, "", "invalid", `must be ${standardTailnetRanges[family]} or a part of it, the range tailscale clients accept (got "${text}")`);
            continue;
        }
        for (const clusterKey of ["podCidrs", "serviceCidrs"] as const) {
            (c[clusterKey] ?? []).forEach((t, i) => {
                if (cidrsOverlap(prefix, parseCidr(t) as Cidr)) {
                    problem(name, "", "conflict", `(${text}) overlaps ${ref(clusterKey)}[${i}] (${t}); choose a part of ${standardTailnetRanges[family]} that the cluster does not use`);
                }
            });
        }
    }

    if (c.routerHostname !== undefined && c.routerReplicas !== undefined && c.routerReplicas > 1 && `${c.routerHostname}-${c.routerReplicas - 1}`.length > 63) {
        problem("routerHostname", "", "conflict",
            `(${c.routerHostname}) is too long for ${c.routerReplicas} routers: the last one's node name, ${c.routerHostname}-${c.routerReplicas - 1}, must fit in 63 characters`);
    }
    if (c.routerProbeTimeoutSeconds !== undefined && c.routerProbeIntervalSeconds !== undefined && c.routerProbeTimeoutSeconds >= c.routerProbeIntervalSeconds) {
        problem("routerProbeTimeoutSeconds", "", "conflict",
            `(${c.routerProbeTimeoutSeconds}) must be shorter than ${ref("routerProbeIntervalSeconds")} (${c.routerProbeIntervalSeconds}): headscale waits for one answer before it sends the next ping`);
    }
    if (c.routerKeyRotationDays !== undefined && c.routerKeyLifetimeDays !== undefined && c.routerKeyRotationDays >= c.routerKeyLifetimeDays) {
        problem("routerKeyRotationDays", "", "conflict",
            `(${c.routerKeyRotationDays}) must be shorter than ${ref("routerKeyLifetimeDays")} (${c.routerKeyLifetimeDays}), so a new router key exists before the old one expires`);
    }

    if (c.tlsMode === "acme") {
        if (c.acmeEmail === "") {
            problems.push({ key: ref("acmeEmail"), name: "acmeEmail", code: "missing",
                message: `${ref("acmeEmail")} is required when ${ref("tlsMode")} is acme: the ACME account's contact address. Set it with \`pulumi config set acmeEmail you@example.com\`` });
        }
        for (const name of ["tlsCertificate", "tlsPrivateKey"] as const) {
            if (c[name] !== undefined && c[name] !== "") {
                problem(name, "", "conflict", `is set but ${ref("tlsMode")} is acme; choose a single approach: remove it (\`pulumi config rm ${name}\`) or set tlsMode to provided`);
            }
        }
    }
    if (c.tlsMode === "provided") {
        for (const name of ["tlsCertificate", "tlsPrivateKey"] as const) {
            if (c[name] === "") {
                const set = name === "tlsPrivateKey" ? `pulumi config set --secret ${name} < key.pem` : `pulumi config set ${name} < fullchain.pem`;
                problems.push({ key: ref(name), name, code: "missing",
                    message: `${ref(name)} is required when ${ref("tlsMode")} is provided. Set it with \`${set}\`` });
            }
        }
    }

    if (c.tunnelPort !== undefined) {
        const taken: [number, string][] = [[80, "nginx (HTTP)"], [443, "nginx (HTTPS)"], [3478, "coturn (STUN)"]];
        if (c.vpsSshPort !== undefined) taken.push([c.vpsSshPort, `sshd (${ref("vpsSshPort")})`]);
        for (const [portNumber, owner] of taken) {
            if (c.tunnelPort === portNumber) {
                problem("tunnelPort", "", "conflict", `(${c.tunnelPort}) is already used on the VPS by ${owner}; choose another port, such as 8080`);
            }
        }
    }

    if (c.hostname !== undefined && c.dnsBaseDomain !== undefined) {
        if (c.hostname === c.dnsBaseDomain || c.hostname.endsWith(`.${c.dnsBaseDomain}`)) {
            problem("dnsBaseDomain", "", "conflict",
                `("${c.dnsBaseDomain}") contains ${ref("hostname")} ("${c.hostname}"); headscale refuses this because MagicDNS would hide the server. Use a separate domain such as tailnet.internal`);
        }
    }

    if (c.dnsSplit !== undefined && c.dnsBaseDomain !== undefined && c.magicDns) {
        for (const domain of Object.keys(c.dnsSplit)) {
            if (domain === c.dnsBaseDomain || domain.endsWith(`.${c.dnsBaseDomain}`)) {
                problem("dnsSplit", `.${domain}`, "conflict", `is inside ${ref("dnsBaseDomain")} ("${c.dnsBaseDomain}"), which MagicDNS answers; use another domain`);
            }
        }
    }

    if (c.userKeys) {
        const seen = new Map<string, number>();
        c.userKeys.forEach((k, i) => {
            const first = seen.get(k.name);
            if (first !== undefined) {
                problem("userKeys", `[${i}].name`, "conflict", `("${k.name}") is already used by ${ref("userKeys")}[${first}]; each key needs its own name`);
            } else {
                seen.set(k.name, i);
            }
        });
        const secrets = new Map<string, number>();
        c.userKeys.forEach((k, i) => {
            if (!k.githubSecret) return;
            const where = `${k.githubSecret.repository.toLowerCase()} ${k.githubSecret.name.toUpperCase()}`;
            const first = secrets.get(where);
            if (first !== undefined) {
                problem("userKeys", `[${i}].githubSecret`, "conflict", `(${k.githubSecret.name} of ${k.githubSecret.repository}) is already written by ${ref("userKeys")}[${first}]; one secret holds one key`);
            } else {
                secrets.set(where, i);
            }
        });
    }

    return problems;
}
