// Every stack configuration key, in one table: its Pulumi type, description, default and
// value rule. Pulumi.yaml's `config:` block and the README's config reference are generated
// from this table (npm run docs:config), and a test keeps them in step.
import { z } from "zod";
import {
    ageIdentity,
    aclTag,
    certificateChain,
    cidr,
    cidrList,
    cronSchedule,
    dnsLabel,
    dnsName,
    flag,
    githubRepository,
    githubSecretName,
    integer,
    ipAddress,
    pinnedImage,
    port,
    privateKey,
    sshPublicKey,
    text,
} from "./rules";
import { isIpAddress } from "./net";
import { imageVersion } from "./upgrade";

/**
 * The tunnel container's default image: Docker's official buildpack-deps:trixie-scm, pinned to
 * the index digest docker-library/repo-info records for its build of 2026-08-25.
 */
const tunnelImageDefault = "docker.io/library/buildpack-deps:trixie-scm@sha256:11ccdf36e8296088e3c64661fb415509b8979f811e8f40ef3dff4be98c7bfcab";

/** The name of one backup file on the VPS. */
export const backupNamePattern = /^headscale-\d{8}T\d{6}Z\.tar\.age$/;

/** The most subnet routers a stack may run (routerReplicas). */
export const maxRouterReplicas = 5;

/** Types that a Pulumi.yaml config declaration accepts. */
export type PulumiType = "string" | "integer" | "boolean" | "array" | "object";

export interface KeySpec {
    /** The type declared in Pulumi.yaml; stack values arrive as strings and are decoded by it. */
    readonly type: PulumiType;
    /** For arrays: the element type declared in Pulumi.yaml. */
    readonly items?: Exclude<PulumiType, "array">;
    /** One or two sentences for `pulumi config` and the README. */
    readonly description: string;
    /** Omitted for required keys. */
    readonly default?: unknown;
    /** Secret keys must be set with `pulumi config set --secret` and stay Outputs in the program. */
    readonly secret?: boolean;
    readonly schema: z.ZodType;
}

const nameserver = text("an IP address or a DNS-over-HTTPS URL").refine(
    (v) => isIpAddress(v) || /^https:\/\/[^\s/]+(\/\S*)?$/.test(v),
    { error: "must be an IP address (such as 192.168.1.1) or a DNS-over-HTTPS URL (https://...)" },
);

const userKey = z.strictObject(
    {
        name: dnsLabel("a short name for this key (it names the stack output)"),
        user: dnsLabel("a headscale user name").optional(),
        tags: z.array(aclTag(), { error: 'must be a list of tags such as ["tag:ci"]' }).optional(),
        reusable: flag().default(false),
        ephemeral: flag().default(false),
        lifetimeDays: integer(1, 3650).default(90),
        githubSecret: z.strictObject(
            { repository: githubRepository(), name: githubSecretName() },
            { error: 'must be {repository: owner/name, name: SECRET}, e.g. {repository: alice/overlay, name: TAILNET_CI_AUTHKEY}' },
        ).optional(),
    },
    { error: "must be an object with name, user or tags, reusable, ephemeral, lifetimeDays and optionally githubSecret" },
).refine((k) => (k.user === undefined) !== (k.tags === undefined || k.tags.length === 0), {
    error: "must name either a user (a personal device key) or tags (a tagged key such as tag:ci), not both and not neither",
});

export const keys = {
    // --- headscale ---
    hostname: {
        type: "string",
        description: "Public DNS name of the headscale server: clients log in to https://<hostname>. Its A/AAAA record must point at the VPS.",
        schema: dnsName(),
    },
    logLevel: {
        type: "string",
        description: "headscale log level: trace, debug, info, warn or error.",
        default: "info",
        schema: z.enum(["trace", "debug", "info", "warn", "error"], { error: "must be one of trace, debug, info, warn, error" }),
    },
    headscaleImage: {
        type: "string",
        description: "headscale container image, pinned to a 0.29.x release. Upgrade one minor version at a time and back up first.",
        default: "ghcr.io/juanfont/headscale:0.29.2",
        schema: pinnedImage("ghcr.io/juanfont/headscale:0.29.2").refine((v) => imageVersion(v) !== undefined, {
            error: "must name its version in the tag, such as ghcr.io/juanfont/headscale:0.29.2 (a digest may follow: ...:0.29.2@sha256:...): the upgrade guard compares versions",
        }),
    },
    tailscaleImage: {
        type: "string",
        description: "tailscale container image for the subnet router, pinned to a stable release.",
        default: "ghcr.io/tailscale/tailscale:v1.102.5",
        schema: pinnedImage("ghcr.io/tailscale/tailscale:v1.102.5"),
    },

    tunnelImage: {
        type: "string",
        description: "Image of the router's tunnel container: it must ship a POSIX sh, the OpenSSH client, grep, mkfifo, date and sleep. The default is Docker's official buildpack-deps:trixie-scm (Debian 13 with openssh-client), pinned by digest.",
        default: tunnelImageDefault,
        schema: pinnedImage(tunnelImageDefault),
    },

    // --- the VPS ---
    vpsIpv4: {
        type: "string",
        description: "Public IPv4 address of the VPS. coturn listens on it and headscale's embedded DERP advertises it.",
        schema: ipAddress("ipv4"),
    },
    vpsIpv6: {
        type: "string",
        description: "Public IPv6 address of the VPS, or empty if it has none.",
        default: "",
        schema: z.union([z.literal(""), ipAddress("ipv6")], { error: "must be empty or a single IPv6 address such as 2001:db8::10" }),
    },
    vpsSshHost: {
        type: "string",
        description: "Address or name that Pulumi connects to over SSH. Empty means vpsIpv4.",
        default: "",
        schema: z.union([z.literal(""), dnsName("a DNS name"), ipAddress("ipv4"), ipAddress("ipv6")], {
            error: "must be empty (use vpsIpv4), a DNS name or an IP address",
        }),
    },
    vpsSshPort: {
        type: "integer",
        description: "SSH port of the VPS, used by Pulumi and by the tunnel.",
        default: 22,
        schema: port(),
    },
    vpsSshUser: {
        type: "string",
        description: "User that Pulumi logs in as. It must be root or have passwordless sudo.",
        default: "root",
        schema: text("a Unix user name").regex(/^[a-z_][a-z0-9_-]{0,31}$/, {
            error: 'must be a Unix user name: lower-case letters, digits, "_" and "-", starting with a letter or "_"',
        }),
    },
    vpsSshPrivateKey: {
        type: "string",
        description: "Private key for vpsSshUser: the whole key file. Secret.",
        secret: true,
        schema: privateKey("an SSH private key"),
    },
    vpsHostKey: {
        type: "string",
        description: "The VPS's SSH host public key, pinned: Pulumi and the tunnel refuse any other. Copy it from the provider's console or /etc/ssh/ssh_host_ed25519_key.pub.",
        schema: sshPublicKey("an SSH host public key"),
    },
    tunnelPort: {
        type: "integer",
        description: "Port on the VPS loopback (127.0.0.1) where the reverse tunnel delivers headscale to nginx. Never opened in the firewall.",
        default: 8080,
        schema: port(),
    },

    // --- TLS on the VPS ---
    tlsMode: {
        type: "string",
        description: "How nginx gets its certificate: acme (certbot, HTTP-01 on port 80) or provided (tlsCertificate and tlsPrivateKey).",
        default: "acme",
        schema: z.enum(["acme", "provided"], { error: "must be acme or provided" }),
    },
    acmeEmail: {
        type: "string",
        description: "Contact e-mail for the ACME account (tlsMode acme).",
        default: "",
        schema: z.union([z.literal(""), z.email({ error: "must be an e-mail address" })], { error: "must be an e-mail address" }),
    },
    tlsCertificate: {
        type: "string",
        description: "PEM certificate chain for hostname, leaf first (tlsMode provided).",
        default: "",
        schema: z.union([z.literal(""), certificateChain()], {
            error: "must be a PEM certificate chain, leaf first: -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----",
        }),
    },
    tlsPrivateKey: {
        type: "string",
        description: "PEM private key of tlsCertificate (tlsMode provided). Secret.",
        default: "",
        secret: true,
        schema: z.union([z.literal(""), privateKey("a PEM private key")], {
            error: "must be a PEM private key: the whole file, from -----BEGIN ... PRIVATE KEY----- to -----END ... PRIVATE KEY-----",
        }),
    },

    // --- the home cluster ---
    kubeconfig: {
        type: "string",
        description: "Path to the kubeconfig for the home cluster. Empty means $KUBECONFIG or ~/.kube/config.",
        default: "",
        schema: text("a file path"),
    },
    kubeContext: {
        type: "string",
        description: "kubeconfig context to use. Empty means the current context.",
        default: "",
        schema: text("a context name"),
    },
    namespace: {
        type: "string",
        description: "Namespace for headscale and the subnet router.",
        default: "overlay",
        schema: dnsLabel("a namespace name"),
    },
    podCidrs: {
        type: "array",
        items: "string",
        description: "The cluster's pod CIDRs (k3s: 10.42.0.0/16). Never advertised; LAN routes must not overlap them.",
        schema: cidrList("CIDRs", "10.42.0.0/16"),
    },
    serviceCidrs: {
        type: "array",
        items: "string",
        description: "The cluster's service CIDRs (k3s: 10.43.0.0/16). Never advertised; LAN routes must not overlap them.",
        schema: cidrList("CIDRs", "10.43.0.0/16"),
    },
    storageClass: {
        type: "string",
        description: "StorageClass for headscale's database volume. Empty means the cluster default.",
        default: "",
        schema: z.union([z.literal(""), dnsLabel("a StorageClass name")], { error: "must be empty or a StorageClass name" }),
    },
    storageSize: {
        type: "string",
        description: "Size of headscale's database volume.",
        default: "1Gi",
        schema: text("a size such as 1Gi").regex(/^[1-9][0-9]*(Mi|Gi|Ti)$/, { error: "must be a size such as 512Mi, 1Gi or 2Gi" }),
    },
    metricsNamespace: {
        type: "string",
        description: "Namespace allowed to scrape headscale metrics (port 9090). Empty means none.",
        default: "",
        schema: z.union([z.literal(""), dnsLabel("a namespace name")], { error: "must be empty or a namespace name" }),
    },

    // --- backups and the tailnet's data ---
    backupSchedule: {
        type: "string",
        description: "When the cluster backs up headscale's database and keys, encrypted, to the VPS: a cron schedule in UTC.",
        default: "30 3 * * *",
        schema: cronSchedule(),
    },
    backupKeep: {
        type: "integer",
        description: "How many backups the VPS keeps; older ones are deleted after each good backup.",
        default: 14,
        schema: integer(1, 365),
    },
    backupImage: {
        type: "string",
        description: "Image of the backup and restore jobs. It must ship sh, sqlite3, age and the OpenSSH sftp client, or be Alpine, where the job adds the missing ones with apk.",
        default: "docker.io/library/alpine:3.22",
        schema: pinnedImage("docker.io/library/alpine:3.22"),
    },
    restoreBackup: {
        type: "string",
        description: "Restore headscale from a backup on the next pulumi up: latest, or a name such as headscale-20261129T033000Z.tar.age. Empty restores nothing.",
        default: "",
        schema: z.union([z.literal(""), z.literal("latest"), text("a backup name").regex(backupNamePattern)], {
            error: "must be empty, latest, or a backup name such as headscale-20261129T033000Z.tar.age",
        }),
    },
    backupIdentity: {
        type: "string",
        description: "The age identity the backups are encrypted to (AGE-SECRET-KEY-1..., as age-keygen writes it). Empty: Pulumi generates one, the backupIdentity output. Set it to a saved identity to read backups from before a destroy. Secret.",
        default: "",
        secret: true,
        schema: z.union([z.literal(""), ageIdentity()], { error: "must be empty or an age identity: one line AGE-SECRET-KEY-1..., as age-keygen writes it" }),
    },
    keepDataOnDestroy: {
        type: "boolean",
        description: "pulumi destroy keeps the namespace with headscale's volume and the router's state, and the backups on the VPS. Set false, then pulumi up, before a destroy that deletes them.",
        default: true,
        schema: flag(),
    },

    // --- the overlay network ---
    lanRoutes: {
        type: "array",
        items: "string",
        description: "LAN subnets the subnet router advertises. Only these are reachable from the tailnet; cluster and tailnet ranges are refused.",
        schema: cidrList("LAN subnets", "192.168.1.0/24"),
    },
    routerPrivileged: {
        type: "boolean",
        description: "Run the router's tailscale container privileged, which it needs for /dev/net/tun and IP forwarding on runc 1.2+ unless a device plugin provides the tun device.",
        default: true,
        schema: flag(),
    },
    routerHostname: {
        type: "string",
        description: "Node name of the subnet router in headscale.",
        default: "home-router",
        schema: dnsLabel("a host name"),
    },
    routerReplicas: {
        type: "integer",
        description: "How many subnet routers to run, each its own node in headscale advertising the same routes (2 or more for failover). Router 0 is named routerHostname, router i routerHostname-i.",
        default: 1,
        schema: integer(1, maxRouterReplicas),
    },
    routerProbeIntervalSeconds: {
        type: "integer",
        description: "With 2 or more routers, headscale pings each one this often and moves the primary role away from one that does not answer.",
        default: 10,
        schema: integer(2, 60),
    },
    routerProbeTimeoutSeconds: {
        type: "integer",
        description: "How long headscale waits for a router's answer to its ping before it moves the primary role away. Must be shorter than the interval.",
        default: 5,
        schema: integer(1, 59),
    },
    tailnetIpv4Prefix: {
        type: "string",
        description: "IPv4 prefix headscale assigns tailnet addresses from: 100.64.0.0/10 or a part of it.",
        default: "100.64.0.0/10",
        schema: cidr("100.64.0.0/10"),
    },
    tailnetIpv6Prefix: {
        type: "string",
        description: "IPv6 prefix headscale assigns tailnet addresses from: fd7a:115c:a1e0::/48 or a part of it.",
        default: "fd7a:115c:a1e0::/48",
        schema: cidr("fd7a:115c:a1e0::/48"),
    },

    // --- DNS for tailnet clients ---
    magicDns: {
        type: "boolean",
        description: "Give every node the name <node>.<dnsBaseDomain>.",
        default: true,
        schema: flag(),
    },
    dnsBaseDomain: {
        type: "string",
        description: "Domain for MagicDNS names. It must differ from hostname and must not contain it.",
        default: "tailnet.internal",
        schema: dnsName("a DNS domain such as tailnet.internal"),
    },
    dnsNameservers: {
        type: "array",
        items: "string",
        description: "Resolvers pushed to clients for all names. Empty leaves each device's own DNS in charge.",
        default: [],
        schema: z.array(nameserver, { error: "must be a list of IP addresses or DNS-over-HTTPS URLs" }),
    },
    dnsSplit: {
        type: "object",
        description: "Split DNS: domain → list of resolvers, e.g. {home.arpa: [192.168.1.1]}. Those names resolve at home from anywhere.",
        default: {},
        schema: z.record(dnsName("a DNS domain such as home.arpa"), z.array(nameserver).min(1, { error: "must list at least one resolver" }), {
            error: "must map domains to lists of resolvers, for example {home.arpa: [192.168.1.1]}",
        }),
    },

    // --- keys ---
    routerKeyLifetimeDays: {
        type: "integer",
        description: "Lifetime in days of the subnet router's preauth key.",
        default: 90,
        schema: integer(2, 3650),
    },
    routerKeyRotationDays: {
        type: "integer",
        description: "A scheduled `pulumi up` mints a new router key every this many days. Must be shorter than the lifetime.",
        default: 60,
        schema: integer(1, 3649),
    },
    userKeys: {
        type: "array",
        items: "object",
        description: "Extra preauth keys, each {name, user or tags, reusable, ephemeral, lifetimeDays, githubSecret}; e.g. {name: ci, tags: [tag:ci], ephemeral: true, githubSecret: {repository: alice/overlay, name: TAILNET_CI_AUTHKEY}}: a key with githubSecret is written into that Actions secret by the run that mints it.",
        default: [],
        schema: z.array(userKey, { error: "must be a list of key objects" }),
    },
} as const satisfies Record<string, KeySpec>;

export type KeyName = keyof typeof keys;

export const keyNames = Object.keys(keys) as KeyName[];

/** The decoded, validated value of every key (secrets still plain strings here). */
export type ConfigValues = { -readonly [K in KeyName]: z.output<(typeof keys)[K]["schema"]> };

export const secretKeyNames = keyNames.filter((k) => (keys[k] as KeySpec).secret === true);
