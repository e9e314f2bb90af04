// bench:edge's relayed tailnet: the real headscale (its embedded DERP included) behind the
// edge's nginx and tunnel, and two real tailscaled, a device and a subnet router, in network
// namespaces of their own. They reach the VPS's address and nothing else, so no UDP passes
// between them and every packet rides DERP. The device uploads to a service on the router's LAN.
//
//   device (10.9.1.2) ──┐
//                       ├── vps (10.9.0.1: nginx, sshd, the tunnel, headscale; forwards nothing)
//   home (10.9.2.2) ────┘
//     └── lan (192.168.1.10): the service
import * as fs from "node:fs";
import * as path from "node:path";
import { headscaleConfig, renderHeadscaleConfig } from "../components/headscale/config";
import { renderPolicy } from "../components/headscale/policy";
import { captureOutput, createNetns, freePort, ip, link, mustRun, Netns, waitUntil } from "../tests/helpers/netns";
import { requireTool } from "../tests/helpers/tools";

export const vpsAddress = "10.9.0.1";
const lanRoute = "192.168.1.0/24";
const lanService = { address: "192.168.1.10", port: 8000 };

/** headscale, as the cluster runs it, with its paths and ports moved to this run's; answers /health on 127.0.0.1:PORT. */
export async function startHeadscale(vps: Netns, dir: string, hostname: string, port: number): Promise<(...args: string[]) => string> {
    const [metrics, grpc, stun] = await Promise.all([freePort(), freePort(), freePort()]);
    const paths = { config: path.join(dir, "headscale"), data: path.join(dir, "headscale", "lib"), run: path.join(dir, "headscale", "run") };
    for (const d of Object.values(paths)) fs.mkdirSync(d, { recursive: true });
    const config = path.join(paths.config, "config.yaml");
    const args = {
        hostname, tailnetIpv4Prefix: "100.64.0.0/10", tailnetIpv6Prefix: "fd7a:115c:a1e0::/48", vpsIpv4: vpsAddress, vpsIpv6: "",
        trustedProxies: ["127.0.0.1/32"], logLevel: "warn", magicDns: false, dnsBaseDomain: "tailnet.internal", dnsNameservers: [], dnsSplit: {},
        haProbe: { intervalSeconds: 10, timeoutSeconds: 5 }, paths, listen: { host: "127.0.0.1", ports: { http: port, metrics, grpc, stun } },
    };
    fs.writeFileSync(config, renderHeadscaleConfig(args));
    fs.writeFileSync((headscaleConfig(args).policy as { path: string }).path, renderPolicy({ lanRoutes: [lanRoute], extraTags: [] }));
    const headscale = requireTool("headscale");
    const log = captureOutput(vps.start(headscale, ["serve", "-c", config]));
    const healthy = await waitUntil(() => vps.run("curl", ["-sf", "--max-time", "2", `http://127.0.0.1:${port}/health`]).status === 0, 30_000, 250);
    if (!healthy) throw new Error(`headscale did not become healthy:\n${log().slice(-2000)}`);
    return (...cli: string[]) => {
        const r = vps.run(headscale, ["-c", config, ...cli, "--output", "json"]);
        if (r.status !== 0) throw new Error(`headscale ${cli.join(" ")}: ${r.stderr}`);
        return r.stdout;
    };
}

export interface RelayedUpload {
    readonly bytes: number;
    readonly seconds: number;
    /** `tailscale ping`'s answer from the device to the router. */
    readonly ping: string;
    /** CPU seconds per process during the upload, most first. */
    readonly cpu: { readonly name: string; readonly seconds: number }[];
    /** The device's DERP send counters during the upload (packets). */
    readonly derp: { readonly name: string; readonly count: number }[];
    readonly error?: string;
}

export interface TailnetArgs {
    readonly vps: Netns;
    readonly dir: string;
    readonly hostname: string;
    readonly caFile: string;
    /** headscale's CLI (startHeadscale's). */
    readonly headscale: (...args: string[]) => string;
    /** Every namespace made here goes in, for the caller to destroy. */
    readonly namespaces: Netns[];
    /** edgeClient.js's upload, run in a namespace: its JSON result. */
    readonly upload: (ns: Netns, url: string, bytes: number) => any;
    readonly bytes: number;
}

/** Builds the device, home and LAN, joins both tailscaled, and times one upload device → LAN service. */
export async function relayedUpload(args: TailnetArgs): Promise<RelayedUpload> {
    const { vps, hostname } = args;
    const [device, home, lan] = ["ovl-bdev", "ovl-bhome", "ovl-blan"].map((prefix) => {
        const ns = createNetns(prefix);
        args.namespaces.push(ns);
        return ns;
    });
    ip(vps, "addr", "add", `${vpsAddress}/32`, "dev", "lo");
    mustRun(vps, "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);
    link(vps, "todevice", "10.9.1.1/24", device, "tovps", "10.9.1.2/24");
    link(vps, "tohome", "10.9.2.1/24", home, "tovps", "10.9.2.2/24");
    link(home, "tolan", "192.168.1.1/24", lan, "tohome", `${lanService.address}/24`);
    ip(device, "route", "add", "default", "via", "10.9.1.1");
    ip(home, "route", "add", "default", "via", "10.9.2.1");
    ip(lan, "route", "add", "default", "via", "192.168.1.1");
    mustRun(home, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
    for (const ns of [device, home]) fs.writeFileSync(path.join(ns.etc, "hosts"), `127.0.0.1 localhost\n${vpsAddress} ${hostname}\n`);
    captureOutput(lan.start(process.execPath, [path.join(__dirname, "edgeBackend.js"), String(lanService.port), lanService.address]));

    const env = { SSL_CERT_FILE: args.caFile, TS_NO_LOGS_NO_SUPPORT: "true" };
    const tailscale = (ns: Netns, name: string) => {
        const state = path.join(args.dir, `tailscale-${name}`);
        fs.mkdirSync(state);
        const socket = path.join(state, "tailscaled.sock");
        const log = captureOutput(ns.start(requireTool("tailscaled"), [`--statedir=${state}`, `--socket=${socket}`], env));
        const cli = (...words: string[]) => ns.run(requireTool("tailscale"), [`--socket=${socket}`, ...words], { env, timeoutMs: 90_000 });
        return { socket, log, cli };
    };
    const router = tailscale(home, "router");
    const phone = tailscale(device, "device");
    if (!(await waitUntil(() => fs.existsSync(router.socket) && fs.existsSync(phone.socket), 20_000))) {
        throw new Error(`tailscaled did not start:\n${router.log()}\n${phone.log()}`);
    }
    args.headscale("users", "create", "bench");
    const user = JSON.parse(args.headscale("users", "list")).find((u: any) => u.name === "bench");
    const routerKey = JSON.parse(args.headscale("preauthkeys", "create", "--tags", "tag:router", "--expiration", "1h")).key;
    const deviceKey = JSON.parse(args.headscale("preauthkeys", "create", "--user", String(user.id), "--expiration", "1h")).key;
    const up = (node: typeof router, key: string, extra: string[]) => {
        const r = node.cli("up", `--login-server=https://${hostname}`, `--authkey=${key}`, "--accept-dns=false", "--timeout=60s", ...extra);
        if (r.status !== 0) throw new Error(`tailscale up: ${r.stderr}\n${node.log().slice(-2000)}`);
    };
    up(router, routerKey, ["--hostname=bench-router", `--advertise-routes=${lanRoute}`]);
    up(phone, deviceKey, ["--hostname=bench-device", "--accept-routes"]);

    // The route is approved by the policy's autoApprovers; the device learns it from its map.
    const serviceUrl = `http://${lanService.address}:${lanService.port}`;
    const reaches = await waitUntil(() => device.run("curl", ["-s", "--max-time", "3", `${serviceUrl}/small`]).stdout === "ok", 60_000, 500);
    if (!reaches) throw new Error(`the device does not reach the LAN service:\n${phone.cli("status").stdout}\n${phone.log().slice(-2000)}`);
    const routerIp = router.cli("ip", "-4").stdout.trim();
    const ping = phone.cli("ping", "-c", "1", "--until-direct=false", routerIp).stdout.trim();

    const sides: [Netns, string][] = [[vps, "vps"], [home, "home"], [device, "device"]];
    const before = { cpu: cpuTimes(sides), derp: derpSends(phone.cli("debug", "metrics").stdout) };
    const r = args.upload(device, `${serviceUrl}/sink`, args.bytes);
    const after = { cpu: cpuTimes(sides), derp: derpSends(phone.cli("debug", "metrics").stdout) };
    const cpu = [...after.cpu].map(([name, ticks]) => ({ name, seconds: (ticks - (before.cpu.get(name) ?? 0)) / 100 }))
        .filter((p) => p.seconds > 0.05).sort((a, b) => b.seconds - a.seconds);
    const derp = [...after.derp].map(([name, count]) => ({ name, count: count - (before.derp.get(name) ?? 0) })).filter((m) => m.count > 0);
    return { bytes: r.bytes ?? 0, seconds: r.seconds ?? 0, ping, cpu, derp, error: r.error };
}

/** tailscaled's counters of packets it sent, queued or dropped on the way to DERP (`tailscale debug metrics`). */
function derpSends(metrics: string): Map<string, number> {
    return new Map([...metrics.matchAll(/^(magicsock_send_derp\S*) (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

/** User + system CPU time (clock ticks) per program and namespace, e.g. "tailscaled (home)". */
function cpuTimes(namespaces: [Netns, string][]): Map<string, number> {
    const times = new Map<string, number>();
    for (const [ns, label] of namespaces) {
        for (const pid of ns.pids()) {
            try {
                const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
                const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
                const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
                const key = `${name} (${label})`;
                times.set(key, (times.get(key) ?? 0) + Number(fields[11]) + Number(fields[12]));
            } catch {
                // it ended meanwhile
            }
        }
    }
    return times;
}
