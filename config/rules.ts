// Value rules shared by several config keys. Each error message says what is allowed,
// because the validator prefixes it with the key and (for non-secrets) the value.
import { createHash } from "node:crypto";
import { z } from "zod";
import { isAgeIdentity } from "../components/backup/ageKey";
import { addressRange, Cidr, isCanonical, isIpAddress, parseCidr } from "./net";

export const integer = (min: number, max: number) => {
    const error = `must be a whole number from ${min} to ${max}`;
    return z.number({ error }).int({ error, abort: true }).min(min, { error, abort: true }).max(max, { error, abort: true });
};

export const port = () => integer(1, 65535);

export const flag = () => z.boolean({ error: "must be true or false" });

export const text = (what: string) => z.string({ error: `must be ${what}` });

export const dnsName = (what = "a DNS name such as headscale.example.com") =>
    text(what)
        .min(1, { error: `must be ${what}`, abort: true })
        .refine((v) => z.hostname().safeParse(v).success && !v.endsWith("."), { error: `must be ${what}`, abort: true })
        .refine((v) => v === v.toLowerCase(), { error: "must be lower case", abort: true })
        .refine((v) => v.includes("."), { error: `must be a fully qualified name with at least one dot (${what})`, abort: true })
        .refine((v) => !isIpAddress(v), { error: `must be a name, not an IP address (${what})`, abort: true })
        .refine((v) => !/^\d+$/.test(v.slice(v.lastIndexOf(".") + 1)), { error: `must end in a real top-level domain, not a number (${what})`, abort: true });

export const ipAddress = (family: "ipv4" | "ipv6") =>
    text(`an ${family === "ipv4" ? "IPv4" : "IPv6"} address`)
        .refine((v) => isIpAddress(v, family), {
            error: `must be a single ${family === "ipv4" ? "IPv4 address such as 203.0.113.10" : "IPv6 address such as 2001:db8::10"}`,
            abort: true,
        })
        .refine((v) => !["unspecified", "multicast", "broadcast"].includes(addressRange(v)), {
            error: "must be a unicast address of the VPS, not an unspecified, multicast or broadcast address",
            abort: true,
        });

export const cidr = (example = "192.168.1.0/24") =>
    text(`a CIDR such as ${example}`)
        .refine((v) => parseCidr(v) !== undefined, { error: `must be a CIDR (address/prefix length) such as ${example}`, abort: true })
        .refine((v) => isCanonical(parseCidr(v) as Cidr), {
            error: "has host bits set; write the network address (for example 192.168.1.0/24, not 192.168.1.7/24)",
            abort: true,
        });

export const cidrList = (what: string, example: string) =>
    z.array(cidr(example), { error: `must be a list of ${what}, for example [${example}]` })
        .min(1, { error: `must list at least one ${what.replace(/s$/, "")}`, abort: true });

/** An OpenSSH public key line ("type base64 [comment]") whose key blob names the same type. */
export const sshPublicKey = (what: string) =>
    text(what).refine(isSshPublicKey, {
        error: `must be ${what}: one line "ssh-ed25519 AAAA..." as printed by ssh-keyscan or found in /etc/ssh/ssh_host_ed25519_key.pub`,
        abort: true,
    });

const sshKeyTypes = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

export function isSshPublicKey(line: string): boolean {
    if (line.trim().includes("\n")) return false;
    const [type, blob] = line.trim().split(/\s+/);
    if (!type || !blob) return false;
    if (!sshKeyTypes.includes(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return false;
    // The blob starts with its own type as an SSH string: uint32 length, then the name.
    const bytes = Buffer.from(blob, "base64");
    if (bytes.length < 4) return false;
    const nameLength = bytes.readUInt32BE(0);
    return bytes.subarray(4, 4 + nameLength).toString("latin1") === type;
}

/** The OpenSSH fingerprint ("SHA256:...") of a public key line, as `ssh-keygen -lf` prints it. */
export function sshFingerprint(line: string): string {
    const blob = line.trim().split(/\s+/)[1] ?? "";
    const digest = createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64");
    return `SHA256:${digest.replace(/=+$/, "")}`;
}

/** A PEM or OpenSSH private key. The value itself never appears in a message. */
export const privateKey = (what: string) =>
    text(what).refine(
        (v) => /^-----BEGIN ((OPENSSH|RSA|EC) )?PRIVATE KEY-----\r?\n[\s\S]+\r?\n-----END ((OPENSSH|RSA|EC) )?PRIVATE KEY-----\s*$/.test(v.trim() + "\n"),
        { error: `must be ${what}: the whole file, from -----BEGIN ... PRIVATE KEY----- to -----END ... PRIVATE KEY-----` },
    );

/** A PEM certificate chain (leaf first). */
export const certificateChain = () =>
    text("a PEM certificate chain").refine(
        (v) => /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(v),
        { error: "must be a PEM certificate chain, leaf first: -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----" },
    );

/** A container image reference pinned to a version tag or digest, never "latest". */
export const pinnedImage = (example: string) =>
    text(`a container image such as ${example}`).refine(
        (v) => {
            const m = /^([a-z0-9.-]+(?::\d+)?\/)?[a-z0-9._/-]+(:([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@sha256:[a-f0-9]{64})?$/.exec(v);
            if (!m) return false;
            const tag = m[3];
            const digest = m[4];
            return digest !== undefined || (tag !== undefined && tag !== "latest");
        },
        { error: `must be an image pinned to a version tag or digest, such as ${example} (not "latest", not untagged)` },
    );

/** A Kubernetes object name usable as a namespace (RFC 1123 label). */
export const dnsLabel = (what: string) =>
    text(what).regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
        error: `must be ${what}: lower-case letters, digits and "-", 1-63 characters, starting and ending with a letter or digit`,
        abort: true,
    });

/** A headscale tag such as "tag:ci". */
export const aclTag = () =>
    text('a tag such as "tag:ci"').regex(/^tag:[a-z0-9][a-z0-9-]*$/, {
        error: 'must be a tag such as "tag:ci": "tag:" then lower-case letters, digits and "-"',
    });

/** A GitHub repository as owner/name. */
export const githubRepository = () =>
    text('a GitHub repository such as "alice/overlay"').regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/, {
        error: 'must be a GitHub repository as owner/name, such as "alice/overlay"',
    });

/** A GitHub Actions secret name: letters, digits and "_", not starting with a digit or GITHUB_ (GitHub's rules). */
export const githubSecretName = () =>
    text('a secret name such as "TAILNET_CI_AUTHKEY"').regex(/^(?!GITHUB_)[A-Za-z_][A-Za-z0-9_]*$/i, {
        error: 'must be a GitHub Actions secret name such as "TAILNET_CI_AUTHKEY": letters, digits and "_", not starting with a digit or with GITHUB_',
    });

/** A Kubernetes CronJob schedule: five cron fields or a macro such as @daily. */
export const cronSchedule = () => {
    const field = String.raw`[0-9A-Za-z*?/,-]+`;
    return text("a cron schedule such as 30 3 * * *").regex(
        new RegExp(String.raw`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|${field}( +${field}){4})$`),
        { error: 'must be a cron schedule of five fields such as "30 3 * * *" (minute hour day month weekday, UTC) or a macro such as @daily' },
    );
};

/** An age X25519 identity, as age-keygen writes it. */
export const ageIdentity = () =>
    text("an age identity").refine(isAgeIdentity, { error: "must be an age identity: one line AGE-SECRET-KEY-1..., as age-keygen writes it" });
