// headscale's config.yaml for release 0.29, rendered from the stack config. Pure: no Pulumi.
// Keys and their meaning follow headscale's config-example.yaml at v0.29.2.
import YAML from "yaml";

/** Ports headscale listens on inside its pod. Only `http` is ever exposed (to the tunnel). */
export const headscalePorts = { http: 8080, metrics: 9090, grpc: 50443, stun: 3478 } as const;

/** Where headscale keeps things in the container; the VM test moves them elsewhere. */
export interface HeadscalePaths {
    /** Read-only: config.yaml and policy.hujson. */
    readonly config: string;
    /** Persistent: database, noise and DERP keys. */
    readonly data: string;
    /** Runtime: the unix socket the CLI talks to. */
    readonly run: string;
}

export const containerPaths: HeadscalePaths = { config: "/etc/headscale", data: "/var/lib/headscale", run: "/var/run/headscale" };

export interface HeadscaleConfigArgs {
    /** Public name: server_url is https://<hostname>. */
    readonly hostname: string;
    readonly tailnetIpv4Prefix: string;
    readonly tailnetIpv6Prefix: string;
    /** The VPS's public addresses, advertised for the embedded DERP region. */
    readonly vpsIpv4: string;
    /** "" when the VPS has no IPv6. */
    readonly vpsIpv6: string;
    /** The hop before headscale: the router pod, whose address is in these ranges. */
    readonly trustedProxies: readonly string[];
    readonly logLevel: string;
    readonly magicDns: boolean;
    readonly dnsBaseDomain: string;
    readonly dnsNameservers: readonly string[];
    readonly dnsSplit: Readonly<Record<string, readonly string[]>>;
    /**
     * HA subnet routers (several advertising the same routes): how often headscale pings each
     * one, and how long it waits for the answer before it moves the primary role away. Written
     * with one router too (headscale then has nothing to probe), so that changing the number
     * of routers never changes this file and never restarts headscale.
     */
    readonly haProbe: { readonly intervalSeconds: number; readonly timeoutSeconds: number };
    /** Default: the container paths. */
    readonly paths?: HeadscalePaths;
    /** Default: all of the pod's addresses and the standard ports. */
    readonly listen?: HeadscaleListen;
}

/** Where headscale listens; tests and the VM harness move it to loopback and free ports. */
export interface HeadscaleListen {
    readonly host: string;
    readonly ports: { readonly [K in keyof typeof headscalePorts]: number };
}

const podListen: HeadscaleListen = { host: "0.0.0.0", ports: headscalePorts };

export const policyFileName = "policy.hujson";

/** The config object; see renderHeadscaleConfig for the text. */
export function headscaleConfig(args: HeadscaleConfigArgs): Record<string, unknown> {
    const paths = args.paths ?? containerPaths;
    const { host, ports } = args.listen ?? podListen;
    return {
        server_url: `https://${args.hostname}`,
        listen_addr: `${host}:${ports.http}`,
        // Inside the pod only: the Service does not carry it and the NetworkPolicy admits at
        // most the configured monitoring namespace.
        metrics_listen_addr: `${host}:${ports.metrics}`,
        // Loopback: the CLI uses the unix socket, so gRPC is never reachable from outside.
        grpc_listen_addr: `127.0.0.1:${ports.grpc}`,
        grpc_allow_insecure: false,
        // Requests arrive from the router pod's autossh (nginx → tunnel → pod); trust its
        // X-Forwarded-For so headscale logs the real client address.
        trusted_proxies: [...args.trustedProxies],
        noise: { private_key_path: `${paths.data}/noise_private.key` },
        prefixes: { v4: args.tailnetIpv4Prefix, v6: args.tailnetIpv6Prefix, allocation: "sequential" },
        derp: {
            server: {
                enabled: true,
                region_id: 999,
                region_code: "headscale",
                region_name: `${args.hostname} (embedded DERP)`,
                verify_clients: true,
                // Same port as the VPS's coturn, which answers the STUN that the DERP map advertises.
                stun_listen_addr: `${host}:${ports.stun}`,
                private_key_path: `${paths.data}/derp_server_private.key`,
                automatically_add_embedded_derp_region: true,
                ipv4: args.vpsIpv4,
                // "none" tells clients the VPS has no IPv6 (empty would send them to DNS for it).
                ipv6: args.vpsIpv6 || "none",
            },
            // No third-party relays: the embedded region is the only one.
            urls: [],
            paths: [],
            auto_update_enabled: false,
        },
        // The image is pinned; upgrades are a config change, not a nag in the log.
        disable_check_updates: true,
        node: {
            expiry: 0,
            ephemeral: { inactivity_timeout: "30m" },
            routes: { ha: { probe_interval: `${args.haProbe.intervalSeconds}s`, probe_timeout: `${args.haProbe.timeoutSeconds}s` } },
        },
        database: {
            type: "sqlite",
            sqlite: { path: `${paths.data}/db.sqlite`, write_ahead_log: true, wal_autocheckpoint: 1000 },
        },
        log: { level: args.logLevel, format: "text" },
        policy: { mode: "file", path: `${paths.config}/${policyFileName}` },
        dns: {
            magic_dns: args.magicDns,
            base_domain: args.dnsBaseDomain,
            // Without global resolvers each device keeps its own DNS.
            override_local_dns: args.dnsNameservers.length > 0,
            nameservers: {
                global: [...args.dnsNameservers],
                split: Object.fromEntries(Object.entries(args.dnsSplit).map(([domain, servers]) => [domain, [...servers]])),
            },
            search_domains: [],
            extra_records: [],
        },
        unix_socket: `${paths.run}/headscale.sock`,
        unix_socket_permission: "0770",
        logtail: { enabled: false },
    };
}

/** headscale's config.yaml. The same arguments always give the same bytes. */
export function renderHeadscaleConfig(args: HeadscaleConfigArgs): string {
    return `# headscale 0.29 configuration, generated by the overlay Pulumi program. Do not edit.\n${YAML.stringify(headscaleConfig(args), { lineWidth: 0 })}`;
}
