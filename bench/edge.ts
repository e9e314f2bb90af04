// npm run bench:edge: the relay path's capacity, measured with the real pieces in a network
// namespace of its own, over loopback: Debian's nginx with its own nginx.conf, as our nginx
// step edits it, and our rendered site, with the open-files limit of our nginx.service
// drop-in; sshd with our drop-in and systemd's 1024 open files, its tunnel session with the
// limit that pam_limits sets from our limits.d file; the router's own tunnel command
// (hold-tunnel.sh and ssh),
// started with a container runtime's soft limit of 1024 open files; and a backend that
// speaks the Upgrade as headscale does. Then the real headscale takes the backend's place,
// and two real tailscaled relay through its DERP (tailnet.ts). It prints figures and ratios
// from one run and asserts nothing. Bounded: it stops itself within 10 minutes and removes
// its namespaces and processes.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { nginxWorkerConnections, vpsOpenFiles } from "../components/vps/limits";
import { renderNginxSite } from "../components/vps/nginx";
import { stepScriptPath } from "../components/vps/steps";
import { captureOutput, createNetns, Netns, signalTree, waitUntil } from "../tests/helpers/netns";
import { requireTool } from "../tests/helpers/tools";
import { startTunnelSshd } from "../tests/helpers/sshd";
import { relayedUpload, startHeadscale } from "./tailnet";

const hostname = "headscale.example.com";
const backendPort = 9000;
const headscalePort = 9100;
const tunnelPort = 8080;
/** The nginx that proxies straight to the backend: other ports than the real site's. */
const directPorts = { http: 8081, https: 8443 };
const streamBytes = 256 * 1024 * 1024;
const latencyRequests = 1000;
const holdSeconds = 60;
const holdSteps = [500, 1000, 2000, 3500, 5000];
const bound = 10 * 60_000;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-bench-edge-"));
let ns: Netns | undefined;
/** The relayed tailnet's namespaces. */
const namespaces: Netns[] = [];

function cleanup(): void {
    for (const space of [...namespaces, ...(ns ? [ns] : [])]) space.destroy();
    namespaces.length = 0;
    ns = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Debian's own nginx.conf, with its pid, logs and site include pointed at this run's files,
 * and worker_connections raised by our nginx step's own edit.
 */
function nginxConf(name: string, site: string): string {
    const distro = fs.readFileSync("/etc/nginx/nginx.conf", "utf8");
    const conf = distro
        .replace(/^\s*pid\s+\S+;/m, `pid ${dir}/${name}.pid;`)
        .replace(/^\s*error_log\s+\S+;/m, `error_log ${dir}/${name}-error.log;`)
        .replace(/^\s*access_log\s+\S+;/m, "access_log off;")
        .replace(/^\s*include \/etc\/nginx\/conf\.d\/\*\.conf;/m, "")
        .replace(/^\s*include \/etc\/nginx\/sites-enabled\/\*;/m, `include ${site};`);
    if (!conf.includes(site)) throw new Error("/etc/nginx/nginx.conf does not include sites-enabled as Debian's does");
    const file = path.join(dir, `${name}.conf`);
    fs.writeFileSync(file, conf);
    const edit = spawnSync("bash", ["-c", 'source "$1" && source "$2" && with_worker_connections "$3" "$4"', "edit",
        stepScriptPath("lib"), stepScriptPath("nginx"), file, String(nginxWorkerConnections)], { encoding: "utf8" });
    if (edit.status !== 0 || !edit.stdout.includes(`worker_connections ${nginxWorkerConnections};`)) throw new Error(`the nginx step's edit failed: ${edit.stderr}`);
    fs.writeFileSync(file, edit.stdout);
    return file;
}

function startNginx(name: string, upstreamPort: number, ports: { http: number; https: number }): void {
    const site = path.join(dir, `${name}.site`);
    fs.writeFileSync(site, renderNginxSite({ hostname, tunnelPort: upstreamPort, ports, tls: { certificate: path.join(dir, "cert.pem"), privateKey: path.join(dir, "key.pem") } }));
    const conf = nginxConf(name, site);
    const test = ns!.run("nginx", ["-t", "-c", conf]);
    if (test.status !== 0) throw new Error(`nginx -t: ${test.stderr}`);
    captureOutput(ns!.start("sh", ["-c", `ulimit -n ${vpsOpenFiles} && exec nginx -c "$0" -g "daemon off;"`, conf]));
}

/** edgeClient.js's argv, run in the namespace with as many open files as allowed (thousands of sockets), and its environment. */
const clientArgv = (args: string[]) => ["-c", 'ulimit -Sn "$(ulimit -Hn)" && exec "$@"', "client", process.execPath, path.join(__dirname, "edgeClient.js"), ...args];
const clientEnv = () => ({ CA_FILE: path.join(dir, "cert.pem"), CONNECT_TO: "127.0.0.1" });

/** edgeClient.js's one JSON line, or an error with what it printed instead. */
function clientResult(output: string): any {
    try {
        return JSON.parse(output.trim().split("\n").at(-1) ?? "");
    } catch {
        return { error: output.trim().slice(0, 300) || "no output" };
    }
}

function client(args: string[], timeoutMs: number): any {
    const r = ns!.run("sh", clientArgv(args), { timeoutMs, env: clientEnv() });
    return clientResult(`${r.stdout}${r.stderr}`);
}

/** Resident memory of the VPS side's processes (nginx, sshd) in the namespace, in MiB. */
function vpsMemoryMiB(): number {
    let kib = 0;
    for (const pid of ns!.pids()) {
        try {
            const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
            if (!/^Name:\s+(nginx|sshd)$/m.test(status)) continue;
            kib += Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
        } catch {
            // it ended meanwhile
        }
    }
    return kib / 1024;
}

const mbps = (r: any) => (r.bytes === streamBytes ? streamBytes / r.seconds / 1e6 : NaN);
const fixed = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "failed");

async function main(): Promise<void> {
    for (const tool of ["nginx", "ssh", "openssl"]) requireTool(tool);
    const made = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"), "-subj", `/CN=${hostname}`, "-addext", `subjectAltName=DNS:${hostname}`], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(made.stderr);
    ns = createNetns("ovl-bench");
    captureOutput(ns.start(process.execPath, [path.join(__dirname, "edgeBackend.js"), String(backendPort)]));
    const sshd = await startTunnelSshd(ns, dir, { tunnelPort, logLevel: "INFO" });
    const tunnel = sshd.startRouter(backendPort, path.join(dir, "tunnel.ssh"));
    startNginx("edge", tunnelPort, { http: 80, https: 443 });
    startNginx("direct", backendPort, directPorts);
    const get = (url: string) => ns!.run("curl", ["-sk", "--max-time", "3", "--resolve", `${hostname}:443:127.0.0.1`, "--resolve", `${hostname}:${directPorts.https}:127.0.0.1`, url]).stdout;
    const answers = (url: string) => get(url) === "ok";
    const up = await waitUntil(() => answers(`http://127.0.0.1:${tunnelPort}/small`) && answers(`https://${hostname}/small`) && answers(`https://${hostname}:${directPorts.https}/small`), 30_000);
    if (!up) throw new Error(`the path did not come up:\n${tunnel.log()}\n${sshd.log().slice(-2000)}`);

    const paths = {
        "direct": `http://127.0.0.1:${backendPort}/`,
        "nginx only": `https://${hostname}:${directPorts.https}/`,
        "tunnel only": `http://127.0.0.1:${tunnelPort}/`,
        "nginx + tunnel": `https://${hostname}/`,
    };
    const cpu = /\baes\b/.test(fs.readFileSync("/proc/cpuinfo", "utf8")) ? "with AES instructions" : "without AES instructions";
    console.log(`bench:edge: ${os.cpus().length} cores (${cpu}), Node.js ${process.version}, ${ns.run("nginx", ["-v"]).stderr.trim()}, ${spawnSync("ssh", ["-V"], { encoding: "utf8" }).stderr.trim()}`);

    console.log(`\n1. One upgraded stream of ${streamBytes / 1024 / 1024} MiB (MB/s; ratio to nginx only):`);
    const throughput: Record<string, number> = {};
    for (const [name, url] of Object.entries(paths)) {
        const r = client(["stream", url, String(streamBytes)], 120_000);
        throughput[name] = mbps(r);
        if (r.error) console.log(`   ${name}: ${r.error}`);
    }
    for (const [name, value] of Object.entries(throughput)) console.log(`   ${name.padEnd(15)} ${fixed(value, 0).padStart(7)} MB/s   ${fixed(value / throughput["nginx only"])}×`);

    console.log(`\n2. Small requests, ${latencyRequests} one after another on one connection (ms):`);
    const latency: Record<string, any> = {};
    for (const [name, url] of Object.entries(paths)) latency[name] = client(["latency", url, String(latencyRequests)], 120_000);
    for (const [name, r] of Object.entries(latency)) {
        console.log(r.error ? `   ${name}: ${r.error}`
            : `   ${name.padEnd(15)} p50 ${fixed(r.p50)}  p99 ${fixed(r.p99)}   added to direct: p50 ${fixed(r.p50 - latency.direct.p50)}, p99 ${fixed(r.p99 - latency.direct.p99)}`);
    }

    console.log(`\n3. Upgraded long-poll connections through nginx + tunnel, each held ${holdSeconds} s (stops at the first step with an error):`);
    let held = 0;
    for (const count of holdSteps) {
        const hold = ns.start("sh", clientArgv(["hold", paths["nginx + tunnel"], String(count), String(holdSeconds)]), clientEnv());
        const output = captureOutput(hold);
        const exited = new Promise<void>((resolve) => hold.once("exit", () => resolve()));
        // Halfway through the hold, every connection is open: the VPS side's memory then.
        await new Promise((resolve) => setTimeout(resolve, (count / 500 + holdSeconds / 2) * 1000));
        const memory = vpsMemoryMiB();
        await exited;
        const r = clientResult(output());
        const ok = !r.error && r.up === count && r.failed === 0;
        console.log(`   ${String(count).padStart(5)}: ${r.error ?? `${r.up} upgraded, ${r.failed} failed${r.errors?.length ? ` (${r.errors.join("; ")})` : ""}`}; nginx + sshd resident ${fixed(memory, 0)} MiB`);
        if (!ok) break;
        held = count;
    }
    console.log(`   held with zero errors: ${held || "none of the steps"}`);

    console.log(`\n4. The relayed tailnet: headscale behind the tunnel, a device and a subnet router that meet only through its DERP; one upload of ${streamBytes / 1024 / 1024} MiB device → LAN service:`);
    signalTree(Number(tunnel.child.pid), "SIGKILL");
    const headscale = await startHeadscale(ns, dir, hostname, headscalePort);
    const relay = sshd.startRouter(headscalePort, path.join(dir, "tailnet.ssh"));
    if (!(await waitUntil(() => /"pass"/.test(get(`https://${hostname}/health`)), 30_000, 250))) throw new Error(`headscale does not answer through the tunnel:\n${relay.log()}`);
    const upload = (where: Netns, url: string, bytes: number) => {
        const r = where.run("sh", clientArgv(["upload", url, String(bytes)]), { timeoutMs: 180_000, env: { ...clientEnv(), CONNECT_TO: "" } });
        return clientResult(`${r.stdout}${r.stderr}`);
    };
    const relayed = await relayedUpload({ vps: ns, dir, hostname, caFile: path.join(dir, "cert.pem"), headscale, namespaces, upload, bytes: streamBytes });
    const relayedMBps = relayed.bytes === streamBytes ? streamBytes / relayed.seconds / 1e6 : NaN;
    console.log(`   device → router: ${relayed.ping}`);
    console.log(relayed.error ? `   failed: ${relayed.error}` : `   ${fixed(relayedMBps, 0)} MB/s   ${fixed(relayedMBps / throughput["nginx + tunnel"])}× nginx + tunnel`);
    console.log(`   the device's DERP sends meanwhile (packets): ${relayed.derp.map((m) => `${m.name} ${m.count}`).join(", ") || "none counted"}`);
    console.log(`   CPU seconds during the upload (${fixed(relayed.seconds, 1)} s on ${os.cpus().length} cores): ${relayed.cpu.map((p) => `${p.name} ${fixed(p.seconds, 1)}`).join(", ")}`);
}

const watchdog = setTimeout(() => {
    console.error(`bench:edge: the ${bound / 60_000}-minute bound is reached; stopping`);
    cleanup();
    process.exit(1);
}, bound);
main().then(
    () => {
        clearTimeout(watchdog);
        cleanup();
    },
    (err) => {
        console.error(`bench:edge: ${(err as Error).message}`);
        clearTimeout(watchdog);
        cleanup();
        process.exit(1);
    },
);
