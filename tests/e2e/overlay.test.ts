// The whole overlay in a box. A Debian 12 VM is the VPS; headscale and the subnet router run
// as processes in a "home" namespace with the config, args and env of their manifests; a LAN
// namespace holds a service on the advertised subnet; a roaming device in its own namespace
// joins with a key the program minted. The program itself drives it: every registration of
// `pulumi up` is carried out for real (engine.ts). Bounded: 20 minutes in all.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "shell-quote";
import { parseNodeRoutes } from "../../components/keys/headscaleOutput";
import { stepFiles } from "../../components/vps/steps";
import { tunnelUser } from "../../components/router/tunnel";
import { shellQuote } from "../../components/shell";
import { captureOutput, waitUntil } from "../helpers/netns";
import { exampleConfig, repoRoot } from "../helpers/stack";
import { requireTool } from "../helpers/tools";
import { exec, mustExec, Result } from "./exec";
import { Deployment, Registration, remoteSsh, up } from "./engine";
import { createKubelet, HomeKubelet } from "./kubelet";
import { clusterServiceAddress, createWorld, Forward, lanServiceAddress, vpsAddress, World } from "./network";
import { bootVm, readImage, Vm, VmImage } from "./vm";

const bound = 20 * 60_000;
const hostname = "headscale.example.com";
const servicePort = 8000;
const lanUrl = `http://${lanServiceAddress}:${servicePort}/`;
const clusterUrl = `http://${clusterServiceAddress}:${servicePort}/`;
// Where build-vm-image.sh left the image (npm run test:e2e builds it first).
const imageDir = path.join(process.env.TOOLS_DIR ?? path.join(repoRoot, ".tools"), "vm");
const run = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-e2e-"));

// QEMU listens on wan's 127.0.0.1 only. Besides the allow-listed ports, forward some the
// firewall must close: a test listener, coturn's TCP port, the tunnel port.
let nextPort = 20000 + (process.pid % 20) * 100;
const forward = (protocol: "tcp" | "udp", guestPort: number): Forward => ({ protocol, guestPort, hostPort: nextPort++ });
const allowed = ["tcp/22", "tcp/80", "tcp/443", "udp/3478"];
const closed = ["tcp/5555", "udp/5555", "tcp/3478", "tcp/8080"];
const forwards = [...allowed, ...closed].map((p) => forward(p.split("/")[0] as "tcp" | "udp", Number(p.split("/")[1])));

let world: World;
let image: VmImage;
let vm: Vm;
let kubelet: HomeKubelet;
let deployment: Deployment;
let device: { socket: string; log: () => string };
const ca = path.join(run, "ca");

function elapsed(ms: number): string {
    return `${(ms / 1000).toFixed(1)} s`;
}

async function probe(ports: string[]): Promise<Record<string, boolean>> {
    const r = await mustExec(world.device, process.execPath, [path.join(__dirname, "probe.js"), vpsAddress, hostname, "3000", ...ports]);
    return JSON.parse(r.stdout);
}

function tailscale(...args: string[]): Promise<Result> {
    return exec(world.device, requireTool("tailscale"), [`--socket=${device.socket}`, ...args], { timeoutMs: 60_000 });
}

async function deviceReaches(url: string, maxTimeS = 5): Promise<string | undefined> {
    const r = await exec(world.device, "curl", ["-sf", "--max-time", String(maxTimeS), url], { timeoutMs: (maxTimeS + 5) * 1000 });
    return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Bounded: polls until the device gets the LAN service's answer; returns the time taken. */
async function untilDeviceReachesLan(timeoutMs: number): Promise<number> {
    const started = Date.now();
    const ok = await waitUntil(async () => (await deviceReaches(lanUrl, 3)) === "lan-service", timeoutMs, 250);
    assert.ok(ok, `the device did not reach ${lanUrl} within ${timeoutMs / 1000} s\n${device.log().slice(-2000)}`);
    return Date.now() - started;
}

function headscaleCli(...args: string[]): Promise<Result> {
    return mustExec(world.home, "headscale", args, { env: kubelet.kubectlEnv() });
}

/** A test CA and a certificate for hostname: the "provided" TLS mode's inputs. */
async function makeCertificate(): Promise<{ certificate: string; privateKey: string }> {
    fs.mkdirSync(ca);
    const openssl = (...args: string[]) => mustExec(undefined, "openssl", args, { timeoutMs: 30_000 });
    const f = (name: string) => path.join(ca, name);
    await openssl("req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=overlay e2e test CA");
    await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", `/CN=${hostname}`);
    fs.writeFileSync(f("ext"), `subjectAltName=DNS:${hostname}\nextendedKeyUsage=serverAuth\n`);
    await openssl("x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", f("ext"), "-out", f("server.pem"));
    return { certificate: fs.readFileSync(f("server.pem"), "utf8"), privateKey: fs.readFileSync(f("server.key"), "utf8") };
}

/** Later steps need a finished `pulumi up`; without one they fail at once, not by timeout. */
function needUp(): void {
    assert.ok(deployment, "pulumi up did not finish: see the failure above");
}

function remoteCommands(): Registration[] {
    return deployment.registrations.filter((r) => r.type === "command:remote:Command");
}

/** Runs one of the program's remote command lines again, over SSH from home, with its stdin. */
function rerun(step: Registration, line: string): Promise<Result> {
    return exec(world.home, "ssh", remoteSsh(step.inputs.connection, run, line), { input: step.inputs.stdin, timeoutMs: 180_000 });
}

/** sha256 of every file the steps install (or "absent"), and each service's main PID and start time. */
async function vpsState(): Promise<Record<string, string>> {
    const files = remoteCommands().flatMap((s) => Object.keys(stepFiles(s.inputs.stdin ?? ""))).filter((p) => !p.endsWith(".http-only"));
    const units = ["nginx", "coturn", "ssh", "nftables"];
    const script = [
        ...files.map((f) => `printf '%s ' ${shellQuote(f)}; if [ -f ${shellQuote(f)} ]; then sha256sum < ${shellQuote(f)} | cut -d' ' -f1; else echo absent; fi`),
        `printf 'sites-enabled '; readlink /etc/nginx/sites-enabled/overlay-headscale || echo absent`,
        ...units.map((u) => `printf '%s ' ${u}; systemctl show -p MainPID -p ActiveEnterTimestampMonotonic -p InvocationID --value ${u} | tr '\\n' ' '; echo`),
        // Rules with their handles (new handles would mean a reload), without the rate limiter's state.
        `printf 'nft '; nft -s -a list chain inet overlay_firewall input | sha256sum | cut -d' ' -f1`,
    ].join("\n");
    const r = await vm.ssh(script);
    assert.equal(r.status, 0, r.stderr);
    return Object.fromEntries(r.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1).trim()]));
}

describe("the overlay end to end: a Debian VM as the VPS, real headscale and Tailscale", { timeout: bound }, () => {
    const watchdog = setTimeout(() => {
        console.error(`e2e: the ${bound / 60_000}-minute bound is reached; stopping`);
        cleanup();
        process.exit(1);
    }, bound);
    watchdog.unref();

    function cleanup() {
        vm?.stop();
        world?.destroy();
        fs.rmSync(run, { recursive: true, force: true });
    }

    before(async () => {
        for (const tool of ["qemu-system-x86_64", "qemu-img", "socat", "ssh", "autossh", "setpriv", "openssl", "curl", "nft", "headscale", "tailscale", "tailscaled", "containerboot"]) requireTool(tool);
        image = readImage(imageDir);
        world = createWorld(hostname, forwards);
        // Cluster DNS for the tunnel's target, as the pod would resolve it.
        fs.appendFileSync(path.join(world.home.etc, "hosts"), "127.0.0.1 headscale.overlay.svc\n");
        world.lan.start(process.execPath, [path.join(__dirname, "httpService.js"), lanServiceAddress, String(servicePort), "lan-service"]);
        world.home.start(process.execPath, [path.join(__dirname, "httpService.js"), clusterServiceAddress, String(servicePort), "cluster-service"]);
        const started = Date.now();
        vm = await bootVm(image, path.join(run, "vm"), world.wan, forwards);
        console.log(`VM: ssh answers ${elapsed(Date.now() - started)} after boot`);
        // A listener on a port the firewall must close, to see it answer before and not after.
        const listeners = await vm.ssh([
            "systemd-run -q --unit=e2e-probe-tcp socat TCP-LISTEN:5555,fork,reuseaddr SYSTEM:'echo open'",
            "systemd-run -q --unit=e2e-probe-udp socat UDP-RECVFROM:5555,fork SYSTEM:'echo open'",
        ].join(" && "));
        assert.equal(listeners.status, 0, listeners.stderr);
    }, { timeout: 420_000 });

    after(async () => {
        if (process.env.OVERLAY_E2E_KEEP && world) {
            // For a person debugging: keep everything up a while (the watchdog still applies).
            console.log(`kept for 10 minutes: namespaces ${[world.wan, world.home, world.lan, world.device].map((n) => n.name).join(" ")}; run directory ${run}`);
            await new Promise((resolve) => setTimeout(resolve, 600_000));
        }
        clearTimeout(watchdog);
        cleanup();
    }, { timeout: 660_000 });

    it("before the firewall, the probe sees the test listener (so a closed port below means closed)", async () => {
        const seen = await waitUntil(async () => {
            const r = await probe(["tcp/22", "tcp/5555", "udp/5555"]);
            return r["tcp/22"] && r["tcp/5555"] && r["udp/5555"];
        }, 30_000, 1_000);
        assert.ok(seen, "the probe does not see the VM's test listeners");
    });

    it("pulumi up (the program, every step carried out for real) builds the overlay", async () => {
        const tls = await makeCertificate();
        const config = exampleConfig({
            set: {
                vpsIpv4: vpsAddress, vpsIpv6: "", vpsHostKey: image.hostKey, vpsSshPrivateKey: image.privateKey,
                tlsMode: "provided", tlsCertificate: tls.certificate, tlsPrivateKey: tls.privateKey,
                userKeys: [{ name: "phone", user: "alice", reusable: false, lifetimeDays: 1 }],
            },
            unset: ["acmeEmail"],
            secret: ["vpsSshPrivateKey", "tlsPrivateKey"],
        });
        // The router trusts the test CA (its manifest already keeps its logs to itself).
        kubelet = createKubelet(world.home, path.join(run, "pods"), { SSL_CERT_FILE: path.join(ca, "ca.pem") });
        const started = Date.now();
        try {
            deployment = await up(config, {
                home: world.home,
                kubelet,
                scratch: run,
                timeoutMs: 480_000,
                localEnv: kubelet.kubectlEnv,
            });
        } catch (err) {
            const state = await vm.ssh("systemctl --no-pager --lines=20 status nginx coturn ssh; ss -tulpn; nft list ruleset", { timeoutMs: 30_000 });
            throw new Error(`${(err as Error).message}\n--- the VPS:\n${state.stdout}${state.stderr}`);
        }
        console.log(`pulumi up (stand-in): ${elapsed(Date.now() - started)}; ${deployment.registrations.length} registrations`);
        for (const step of remoteCommands()) {
            console.log(`  ${step.name}: ${elapsed(step.result!.ms)}${step.inputs.logging === "none" ? "" : `\n${step.result!.stderr.trim().replace(/^/gm, "    ")}`}`);
        }
        assert.equal(deployment.exports.vpsHostKey, image.hostKey, "the tunnel step reports the VM's own host key");
        assert.equal(deployment.exports.loginServer, `https://${hostname}`);
        // The router registered with the minted key, and the approval step left exactly the LAN.
        const nodes = parseNodeRoutes((await headscaleCli("nodes", "list-routes", "--output", "json")).stdout);
        const router = nodes.find((n) => n.name === "home-router");
        assert.deepEqual(router?.approved, ["192.168.1.0/24"], JSON.stringify(nodes));
        // The manifest's env reached tailscaled: it uploads no logs.
        const tailscaleLog = kubelet.pods.get("subnet-router")!.containers.find((c) => c.name === "tailscale")!.log();
        assert.match(tailscaleLog, /envknob: TS_NO_LOGS_NO_SUPPORT="true"/);
    });

    it("the roaming device joins with the program's user key, through nginx and the tunnel", async () => {
        needUp();
        const state = path.join(run, "device");
        fs.mkdirSync(state);
        const socket = path.join(state, "tailscaled.sock");
        const env = { SSL_CERT_FILE: path.join(ca, "ca.pem"), TS_NO_LOGS_NO_SUPPORT: "true" };
        const daemon = world.device.start(requireTool("tailscaled"), [`--statedir=${state}`, `--socket=${socket}`], env);
        device = { socket, log: captureOutput(daemon) };
        assert.ok(await waitUntil(() => fs.existsSync(socket), 20_000), `tailscaled did not start:\n${device.log()}`);

        const keys = deployment.exports.userKeys as Record<string, { tailscaleUp: string }>;
        const line = parse(keys.phone.tailscaleUp).map(String);
        assert.deepEqual(line.slice(0, 2), ["tailscale", "up"]);
        assert.ok(line.includes("--accept-routes"), "the line accepts the LAN routes");
        // The test machine's DNS stays untouched; the rest is the program's line as given.
        const r = await exec(world.device, requireTool("tailscale"), [`--socket=${socket}`, ...line.slice(1), "--accept-dns=false", "--hostname=phone", "--timeout=90s"], { env, timeoutMs: 120_000 });
        assert.equal(r.status, 0, `tailscale up: ${r.stderr}\n${device.log().slice(-3000)}`);
    });

    it("the device reaches the LAN service through the subnet route, relayed by the VPS", async () => {
        needUp();
        const ms = await untilDeviceReachesLan(120_000);
        console.log(`device → LAN service: first answer after ${elapsed(ms)}`);
        const status = JSON.parse((await tailscale("status", "--json")).stdout);
        const router = Object.values(status.Peer as Record<string, any>).find((p) => p.HostName === "home-router");
        assert.ok(router, "the router is a peer");
        assert.deepEqual(router.PrimaryRoutes, ["192.168.1.0/24"]);
        // No direct path exists between home and the device: DERP through nginx carries it.
        const ping = await tailscale("ping", "-c", "1", "--until-direct=false", router.TailscaleIPs[0]);
        assert.match(ping.stdout, /via DERP/, ping.stdout + ping.stderr);
    });

    it("the device cannot reach the cluster subnet in the home namespace", async () => {
        needUp();
        assert.equal(await deviceReaches(clusterUrl, 5), undefined);
        const status = JSON.parse((await tailscale("status", "--json")).stdout);
        const routes = Object.values(status.Peer as Record<string, any>).flatMap((p) => p.AllowedIPs ?? []);
        assert.ok(!routes.some((r: string) => r.startsWith("10.42.") || r.startsWith("10.43.")), routes.join(" "));
        // It is there: home itself reaches it.
        assert.equal((await exec(world.home, "curl", ["-sf", "--max-time", "5", clusterUrl])).stdout.trim(), "cluster-service");
    });

    it("tailscale netcheck gets its STUN answer from the VM's coturn", async () => {
        needUp();
        const r = await tailscale("netcheck", "--format=json");
        assert.equal(r.status, 0, r.stderr);
        const report = JSON.parse(r.stdout);
        assert.equal(report.UDP, true, r.stdout);
        // Only a server inside the VM sees the device as QEMU's 10.0.2.2.
        assert.match(String(report.GlobalV4), /^10\.0\.2\.2:\d+$/, r.stdout);
        assert.ok(report.RegionLatency?.["999"] > 0, `region 999 latency: ${r.stdout}`);
        // ...and there, only coturn listens on udp/3478.
        const listeners = await vm.ssh("ss -Hulnp 'sport = :3478'");
        assert.match(listeners.stdout, /10\.0\.2\.15:3478.*"turnserver"/, listeners.stdout);
        assert.doesNotMatch(listeners.stdout.replace(/.*"turnserver".*\n?/g, ""), /\S/, "nothing else on udp/3478");
    });

    it("the embedded DERP (region 999) is reachable through nginx and the tunnel", async () => {
        needUp();
        const r = await tailscale("debug", "derp", "999");
        assert.equal(r.status, 0, r.stderr);
        const report = JSON.parse(r.stdout);
        // This VPS has no IPv6 (the DERP map says "none"), which the checker reports anyway.
        assert.deepEqual((report.Errors ?? []).filter((e: string) => !/ over IPv6: /.test(e)), [], r.stdout);
        assert.ok((report.Info as string[]).some((l) => /Successfully established a DERP connection/.test(l)), r.stdout);
    });

    it("only the allow-listed ports of the VM answer", async () => {
        needUp();
        const result = await probe([...allowed, ...closed]);
        assert.deepEqual(result, Object.fromEntries([...allowed.map((p) => [p, true]), ...closed.map((p) => [p, false])]));
    });

    it("the tunnel user cannot get a shell, nor any forward but its own", async () => {
        needUp();
        const secret = deployment.registrations.find((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.name === "subnet-router-credentials")?.inputs.stringData;
        assert.ok(secret, "the router's credentials Secret");
        const key = path.join(run, "tunnel_key");
        fs.writeFileSync(key, secret["tunnel-key"], { mode: 0o600 });
        const known = path.join(run, "tunnel_known_hosts");
        fs.writeFileSync(known, secret.known_hosts);
        const ssh = (...args: string[]) => exec(world.home, "ssh", ["-i", key, "-o", `UserKnownHostsFile=${known}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", ...args], { timeoutMs: 30_000 });
        const command = await ssh(`${tunnelUser}@${vpsAddress}`, "id");
        assert.notEqual(command.status, 0);
        assert.doesNotMatch(command.stdout, /uid=/);
        const shell = await ssh("-tt", `${tunnelUser}@${vpsAddress}`);
        assert.notEqual(shell.status, 0);
        assert.doesNotMatch(shell.stdout, /uid=|\$ |# /);
        const otherForward = await ssh("-N", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:9999:127.0.0.1:22", `${tunnelUser}@${vpsAddress}`);
        assert.notEqual(otherForward.status, 0, "a second reverse forward is refused");
        const local = await ssh("-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:2222:127.0.0.1:22", `${tunnelUser}@${vpsAddress}`);
        assert.notEqual(local.status, 0, "a local forward is refused");
    });

    it("fault: the tunnel's ssh is killed; autossh restores it and the device reaches the LAN again", async () => {
        needUp();
        const tunnel = kubelet.pods.get("subnet-router")!.containers.find((c) => c.name === "tunnel")!;
        const sshPid = async () => (await exec(undefined, "pgrep", ["-P", String(tunnel.process.pid), "-x", "ssh"])).stdout.trim();
        const before = await sshPid();
        assert.match(before, /^\d+$/, "autossh's ssh child");
        const killed = Date.now();
        process.kill(Number(before), "SIGKILL");
        assert.ok(await waitUntil(async () => /^\d+$/.test(await sshPid()) && (await sshPid()) !== before, 60_000, 50), "autossh did not start a new ssh");
        const newSsh = Date.now() - killed;
        await untilDeviceReachesLan(120_000);
        const recovered = Date.now() - killed;
        console.log(`tunnel fault: new ssh after ${elapsed(newSsh)}; the device reached the LAN again after ${elapsed(recovered)}`);
    });

    it("Upgrade requests went through nginx and the tunnel both ways (control and DERP)", async () => {
        needUp();
        // nginx logs an upgraded connection when it ends: the tunnel fault ended the control
        // (ts2021) and DERP connections of both nodes. 101 and bytes sent: switched, then used.
        const r = await vm.ssh("awk '$9 == 101 && $10 > 0 {print $6, $7}' /var/log/nginx/access.log | sed 's/[?].*//' | sort -u");
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), ['"GET /derp', '"POST /ts2021'], r.stdout);
    });

    it("fault: headscale restarts; the device and the router reconnect without new keys", async () => {
        needUp();
        const nodes = async () => (JSON.parse((await headscaleCli("nodes", "list", "--output", "json")).stdout) as any[])
            .map((n) => `${n.id} ${n.name} ${n.machine_key} ${n.node_key}`).sort();
        const before = await nodes();
        const keysBefore = JSON.parse((await headscaleCli("preauthkeys", "list", "--output", "json")).stdout).length;
        const pod = kubelet.pods.get("headscale")!;
        const old = pod.containers[0].process;
        const started = Date.now();
        await pod.restart();
        const ready = Date.now() - started;
        assert.ok(old.exitCode !== null || old.signalCode !== null, "the old headscale process is gone");
        assert.notEqual(pod.containers[0].process.pid, old.pid);
        await untilDeviceReachesLan(180_000);
        console.log(`headscale restart: ready again after ${elapsed(ready)}; the device reached the LAN again after ${elapsed(Date.now() - started)}`);
        assert.deepEqual(await nodes(), before, "the same nodes with the same keys");
        assert.equal(JSON.parse((await headscaleCli("preauthkeys", "list", "--output", "json")).stdout).length, keysBefore, "no key was minted");
        const status = JSON.parse((await tailscale("status", "--json")).stdout);
        assert.equal(status.BackendState, "Running");
    });

    it("every VPS step a second time changes nothing and restarts nothing", async () => {
        needUp();
        const before = await vpsState();
        let total = 0;
        for (const step of remoteCommands()) {
            const r = await rerun(step, step.inputs.create);
            assert.equal(r.status, 0, `${step.name}: ${r.stderr}`);
            console.log(`  again ${step.name}: ${elapsed(r.ms)}`);
            total += r.ms;
        }
        console.log(`second run of all VPS steps: ${elapsed(total)}`);
        assert.deepEqual(await vpsState(), before);
    });

    it("the delete steps leave nothing behind on the VM, and the router key is expired", async () => {
        needUp();
        // As pulumi destroy deletes the router's Deployment; the device leaves too.
        kubelet.pods.get("subnet-router")!.stop();
        await exec(world.device, "pkill", ["-x", "tailscaled"]);
        const steps = remoteCommands();
        // Dependents first, as pulumi destroy does (registrations completed in dependency order).
        for (const step of [...steps].reverse()) {
            const r = await rerun(step, step.inputs.delete);
            assert.equal(r.status, 0, `${step.name} delete: ${r.stderr}`);
        }
        for (const local of [...deployment.registrations].reverse().filter((r) => r.type === "command:local:Command" && r.inputs.delete)) {
            const r = await exec(world.home, "sh", ["-c", local.inputs.delete], { env: kubelet.kubectlEnv() });
            assert.equal(r.status, 0, `${local.name} delete: ${r.stderr}`);
        }
        const sent = steps.flatMap((s) => Object.entries(stepFiles(s.inputs.stdin ?? "")));
        const check = await vm.ssh([
            ...sent.map(([file, content]) => `if [ -f ${shellQuote(file)} ] && [ "$(sha256sum < ${shellQuote(file)} | cut -d' ' -f1)" = ${sha256(content)} ]; then echo "still there: "${shellQuote(file)}; fi`),
            `[ ! -e /etc/nginx/sites-enabled/overlay-headscale ] || echo "still there: the nginx site link"`,
            `! id ${tunnelUser} >/dev/null 2>&1 || echo "still there: the user ${tunnelUser}"`,
            `! nft list table inet overlay_firewall >/dev/null 2>&1 || echo "still there: the firewall table"`,
            `! systemctl is-active --quiet coturn || echo "still running: coturn"`,
        ].join("\n"));
        assert.equal(check.stdout.trim(), "", check.stdout);
        const routerKeyId = String(deployment.exports.routerKeyId);
        const keys = JSON.parse((await headscaleCli("preauthkeys", "list", "--output", "json")).stdout) as { id: number; expiration?: { seconds: number } }[];
        const routerKey = keys.find((k) => String(k.id) === routerKeyId);
        assert.ok(routerKey?.expiration && routerKey.expiration.seconds * 1000 <= Date.now(), "the router key is expired");
    });
});

function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}

