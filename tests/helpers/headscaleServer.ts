// headscale's config and policy as the program renders them, for a real headscale that a test
// runs as a process on loopback, in a network namespace of its own: the config names
// documentation addresses, which must not be reached for real.
import * as fs from "node:fs";
import * as path from "node:path";
import { renderHeadscaleConfig } from "../../components/headscale/config";
import { renderPolicy } from "../../components/headscale/policy";

/** Writes config.yaml and policy.hujson under `dir` (with the data and run directories); returns the config's path. */
export function writeHeadscaleConfig(dir: string, httpPort: number, options: { lanRoutes: string[]; logLevel?: string }): string {
    const paths = { config: path.join(dir, "etc"), data: path.join(dir, "lib"), run: path.join(dir, "run") };
    for (const d of Object.values(paths)) fs.mkdirSync(d, { recursive: true });
    const config = path.join(paths.config, "config.yaml");
    fs.writeFileSync(config, renderHeadscaleConfig({
        hostname: "headscale.example.com", tailnetIpv4Prefix: "100.64.0.0/10", tailnetIpv6Prefix: "fd7a:115c:a1e0::/48",
        vpsIpv4: "203.0.113.10", vpsIpv6: "", trustedProxies: ["10.42.0.0/16"], logLevel: options.logLevel ?? "info", magicDns: true,
        dnsBaseDomain: "tailnet.internal", dnsNameservers: [], dnsSplit: {}, haProbe: { intervalSeconds: 10, timeoutSeconds: 5 },
        paths, listen: { host: "127.0.0.1", ports: { http: httpPort, metrics: httpPort + 1, grpc: httpPort + 2, stun: httpPort + 3 } },
    }));
    fs.writeFileSync(path.join(paths.config, "policy.hujson"), renderPolicy({ lanRoutes: options.lanRoutes, extraTags: ["tag:ci"] }));
    return config;
}
