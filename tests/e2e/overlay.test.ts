// The whole overlay in a box, driven only by the real `pulumi` CLI. A Debian 12 VM is the VPS;
// a real Kubernetes control plane runs in a "home" namespace, with one Node whose pods are
// processes there (kubelet.ts); a LAN namespace holds a service on the advertised subnet; a
// roaming device in its own namespace joins with a key the program minted. Bad input first,
// then the stack is built, checked, left alone, refreshed, rotated, exported and destroyed.
// Bounded: 25 minutes in all.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { parse } from "shell-quote";
import YAML from "yaml";
import { parseNodeRoutes } from "../../components/keys/headscaleOutput";
import { routerInstances } from "../../components/router";
import { tunnelUser } from "../../components/router/tunnel";
import { shellQuote } from "../../components/shell";
import { turnserverConfPath } from "../../components/vps/coturn";
import { firewallPath } from "../../components/vps/firewall";
import { nginxLimitsPath, nginxWorkerConnections, tunnelLimitsPath, vpsOpenFiles } from "../../components/vps/limits";
import { nginxSitePath, providedTlsFiles } from "../../components/vps/nginx";
import { authorizedKeysPath, sshdDropInPath } from "../../components/vps/sshd";
import { backupAuthorizedKeysPath, backupChroot, backupSshdDropInPath, backupStoreUser } from "../../components/vps/backupStore";
import { stepFiles } from "../../components/vps/steps";
import { backupNamePattern } from "../../config/keys";
import { placeholderKeypair } from "../../plan/placeholderKeys";
import { captureOutput, mustRun, Netns, waitUntil } from "../helpers/netns";
import { repoRoot } from "../helpers/stack";
import { requireTool, toolsDir } from "../helpers/tools";
import { ControlPlane, startControlPlane } from "./controlPlane";
import { exec, mustExec, Result } from "./exec";
import { kubeApi } from "./kubeApi";
import { NodeAgent, startNodeAgent } from "./kubelet";
import { clusterServiceAddress, createWorld, Forward, home2Address, homeAddress, lanServiceAddress, vpsAddress, World } from "./network";
import { mustPulumi, PulumiProject, pulumiProject } from "./pulumiCli";
import { Connection, sshArgs } from "./ssh";
import { bootVm, readImage, Vm, VmImage } from "./vm";

const bound = 25 * 60_000;
const hostname = "headscale.example.com";
const namespace = "overlay";
const stack = "e2e";
const nodeName = "home-node";
/** The second Node, there while the stack runs two routers. */
const node2Name = "home-node-2";
const servicePort = 8000;
/** The LAN route of the example stack, which the routers advertise. */
const lanRoute = "192.168.1.0/24";
const lanUrl = `http://${lanServiceAddress}:${servicePort}/`;
const clusterUrl = `http://${clusterServiceAddress}:${servicePort}/`;
// Where build-vm-image.sh left the image (npm run test:e2e builds it first).
const imageDir = path.join(toolsDir, "vm");
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
let cluster: ControlPlane;
let node: NodeAgent;
/** The second Node, while the stack runs two routers. */
let node2: NodeAgent | undefined;
let startNode: (name: string, ns: Netns, address: string) => Promise<NodeAgent>;
let project: PulumiProject;
let kubectlEnv: NodeJS.ProcessEnv;
let built = false;
/** The VM as the VPS steps applied it (appliedState), recorded before the drift tests edit it. */
let applied: Record<string, string> | undefined;
/** The URNs the fresh preview planned. */
let planned: string[] = [];
/** How long the targeted up of the VPS half took. */
let vpsHalfMs = 0;
let device: { socket: string; log: () => string };
let outputs: Record<string, any> = {};
let tls: { certificate: string; privateKey: string };
let backupName: string | undefined;
const ca = path.join(run, "ca");
const timings: string[] = [];

function elapsed(ms: number): string {
    return `${(ms / 1000).toFixed(1)} s`;
}

function report(line: string): void {
    console.log(line);
    timings.push(line);
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

/** kubectl as the user runs it, with the cluster's admin kubeconfig, in the home namespace. */
function kubectl(...args: string[]): Promise<Result> {
    return mustExec(world.home, "kubectl", ["--kubeconfig", cluster.kubeconfig, "--context", cluster.context, ...args], { env: kubectlEnv, timeoutMs: 60_000 });
}

/** The headscale CLI in the headscale pod, as the program's commands run it. */
function headscaleCli(...args: string[]): Promise<Result> {
    return kubectl(`--namespace=${namespace}`, "exec", "headscale-0", "-c", "headscale", "--", "headscale", ...args);
}

async function pod(name: string): Promise<any> {
    return JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "pod", name, "--output=json")).stdout);
}

/** Where headscale's volume is on this node (the test's provisioner makes hostPath volumes). */
async function dataDir(): Promise<string> {
    const volume = (await kubectl(`--namespace=${namespace}`, "get", "pvc", "data-headscale-0", "--output=jsonpath={.spec.volumeName}")).stdout.trim();
    return (await kubectl("get", "pv", volume, "--output=jsonpath={.spec.hostPath.path}")).stdout.trim();
}

/** A Job's pods' termination messages: the end of a failed job's output. */
async function jobMessage(job: string): Promise<string> {
    return (await kubectl(`--namespace=${namespace}`, "get", "pods", `--selector=batch.kubernetes.io/job-name=${job}`,
        "--output=jsonpath={range .items[*]}{.status.containerStatuses[*].state.terminated.message}{end}")).stdout;
}

/** Waits for a Job to succeed or fail for good; while it runs, counts how often the device reaches the LAN. */
async function finishedJob(job: string, timeoutMs: number): Promise<{ succeeded: boolean; pods: number; reachedDuring: number }> {
    let status: any = {};
    let reachedDuring = 0;
    const finished = await waitUntil(async () => {
        if ((await deviceReaches(lanUrl, 3)) === "lan-service") reachedDuring++;
        status = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "job", job, "--output=json")).stdout).status;
        return (status.conditions ?? []).some((c: any) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
    }, timeoutMs, 1_000);
    assert.ok(finished, `job ${job} did not finish in ${timeoutMs / 1000} s: ${JSON.stringify(status)} ${await jobMessage(job)}`);
    return { succeeded: status.succeeded === 1, pods: (status.succeeded ?? 0) + (status.failed ?? 0), reachedDuring };
}

/** The newest backup on the VM. */
async function newestBackup(): Promise<string> {
    const r = await vm.ssh(`ls -1 ${backupChroot}/backups`);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter((name) => backupNamePattern.test(name)).sort().at(-1) ?? "";
}

async function routerAuthKey(): Promise<string> {
    const data = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "secret", "subnet-router-credentials", "--output=json")).stdout).data;
    return Buffer.from(data.TS_AUTHKEY, "base64").toString("utf8");
}

async function routerPod(): Promise<any> {
    const list = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "pods", "--selector=app.kubernetes.io/name=subnet-router", "--output=json")).stdout);
    assert.equal(list.items.length, 1, "one router pod");
    return list.items[0];
}

/** Each node's routes as headscale lists them: approved, and the ones it serves as primary (`subnet_routes`). */
async function routeTable(): Promise<{ name: string; id: string; approved: string[]; primary: string[]; online: boolean }[]> {
    const nodes = JSON.parse((await headscaleCli("nodes", "list", "--output", "json")).stdout) as any[];
    return nodes.map((n) => ({
        name: String(n.given_name ?? n.name),
        id: String(n.id),
        approved: (n.approved_routes ?? []).map(String),
        primary: (n.subnet_routes ?? []).map(String),
        online: n.online === true,
    }));
}

/** The router node that serves the LAN route now, by headscale. */
async function primaryRouter(): Promise<string | undefined> {
    return (await routeTable()).find((n) => n.primary.includes(lanRoute))?.name;
}

/** The two routers of the HA part, named as the program names them. */
const haRouters = routerInstances("home-router", 2);
const routerDeployments = haRouters.map((r) => r.name);

/** A router's Deployment from its node name in headscale ("" if none is). */
function deploymentOf(nodeNameInHeadscale: string): string {
    return haRouters.find((r) => r.nodeName === nodeNameInHeadscale)?.name ?? "";
}

/** A router's running pod: its name and the node agent that runs it. */
async function routerPodOf(deployment: string): Promise<{ name: string; agent: NodeAgent; nodeName: string }> {
    const list = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "pods", `--selector=app.kubernetes.io/name=${deployment}`, "--output=json")).stdout);
    const pod = list.items.find((p: any) => !p.metadata.deletionTimestamp);
    assert.ok(pod, `no pod of ${deployment}`);
    const agent = pod.spec.nodeName === node2Name ? node2! : node;
    return { name: pod.metadata.name, agent, nodeName: pod.spec.nodeName };
}

/** Which router's tunnel container last said that it holds the VPS's port. */
async function tunnelHolder(deployments: readonly string[]): Promise<string | undefined> {
    for (const d of deployments) {
        const pod = await routerPodOf(d);
        const log = pod.agent.pods.get(`${namespace}/${pod.name}`)?.containers.find((c) => c.name === "tunnel")?.log() ?? "";
        const last = log.split("\n").filter((l) => /^overlay: /.test(l)).at(-1) ?? "";
        if (/^overlay: this router holds the tunnel/.test(last)) return d;
    }
    return undefined;
}

/** headscale's /health through the VPS (nginx, then the tunnel), from the device. */
async function headscaleThroughVps(): Promise<boolean> {
    const r = await exec(world.device, "curl", ["-sf", "--max-time", "3", "--cacert", path.join(ca, "ca.pem"), `https://${hostname}/health`], { timeoutMs: 10_000 });
    return r.status === 0;
}

/** Polls the LAN from the device until stopped: how many tries got through, how many did not, and the longest run without an answer. */
function watchLan(): { stop(): Promise<{ ok: number; failed: number; longestGapMs: number }> } {
    let running = true;
    let ok = 0;
    let failed = 0;
    let lastOk = Date.now();
    let longestGapMs = 0;
    const loop = (async () => {
        while (running) {
            const started = Date.now();
            if ((await deviceReaches(lanUrl, 3)) === "lan-service") {
                ok++;
                longestGapMs = Math.max(longestGapMs, Date.now() - lastOk);
                lastOk = Date.now();
            } else {
                failed++;
            }
            await new Promise((resolve) => setTimeout(resolve, Math.max(0, 500 - (Date.now() - started))));
        }
    })();
    return {
        async stop() {
            running = false;
            await loop;
            return { ok, failed, longestGapMs: Math.max(longestGapMs, failed ? Date.now() - lastOk : 0) };
        },
    };
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

/** Writes the stack's plain config into its stack file and sets the secrets with `pulumi config set --secret`. */
async function configure(stackName: string, plain: Record<string, unknown>, secrets: Record<string, string>): Promise<void> {
    const file = project.stackFile(stackName);
    const doc = (fs.existsSync(file) ? YAML.parse(fs.readFileSync(file, "utf8")) : null) ?? {};
    doc.config = Object.fromEntries(Object.entries(plain).map(([k, v]) => [`overlay:${k}`, v]));
    fs.writeFileSync(file, YAML.stringify(doc));
    for (const [key, value] of Object.entries(secrets)) {
        await mustPulumi(project, ["config", "set", "--stack", stackName, "--secret", key], { input: value });
    }
}

async function setConfig(key: string, value: string): Promise<void> {
    await mustPulumi(project, ["config", "set", "--stack", stack, key, value]);
}

/** The example stack's config for this box: the VM as the VPS, provided TLS, the test cluster. */
function stackConfig(): Record<string, unknown> {
    const example = YAML.parse(fs.readFileSync(path.join(repoRoot, "Pulumi.home.yaml"), "utf8")).config as Record<string, unknown>;
    const config = Object.fromEntries(Object.entries(example).map(([k, v]) => [k.replace(/^overlay:/, ""), v]));
    delete config.acmeEmail;
    return {
        ...config,
        vpsIpv4: vpsAddress,
        vpsIpv6: "",
        vpsHostKey: image.hostKey,
        tlsMode: "provided",
        tlsCertificate: tls.certificate,
        kubeconfig: cluster.kubeconfig,
        kubeContext: cluster.context,
        userKeys: [{ name: "phone", user: "alice", reusable: false, lifetimeDays: 1 }],
        // The tests start every backup themselves: the nightly one goes 12 hours from now, so
        // that it never fires during a run (the default, 03:30 UTC, once did).
        backupSchedule: `0 ${(new Date().getUTCHours() + 12) % 24} * * *`,
    };
}

/** `pulumi stack export --show-secrets`: the deployment's resources, secrets in plain. */
async function stateResources(): Promise<any[]> {
    const r = await mustPulumi(project, ["stack", "export", "--stack", stack, "--show-secrets"]);
    return plainState(JSON.parse(r.stdout).deployment.resources ?? []);
}

/** The export shows a secret as {<signature>: ..., plaintext: "<JSON>"}: the value itself instead. */
function plainState(value: any): any {
    if (Array.isArray(value)) return value.map(plainState);
    if (value && typeof value === "object") {
        if (secretSignature in value && typeof value.plaintext === "string") return plainState(JSON.parse(value.plaintext));
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainState(v)]));
    }
    return value;
}
const secretSignature = "4dabf18193072939515e22adb298388d";

async function readOutputs(): Promise<Record<string, any>> {
    return JSON.parse((await mustPulumi(project, ["stack", "output", "--stack", stack, "--json", "--show-secrets"])).stdout);
}

/** The VPS steps as the state holds them: their connection, command lines and stdin. */
async function remoteCommands(): Promise<{ name: string; inputs: any }[]> {
    return (await stateResources()).filter((r) => r.type === "command:remote:Command").map((r) => ({ name: r.urn.split("::").pop(), inputs: r.inputs }));
}

/** Runs one of the program's remote command lines again, over SSH from home, with its stdin. */
function rerun(step: { inputs: any }, line: string): Promise<Result> {
    return exec(world.home, "ssh", sshArgs(step.inputs.connection as Connection, run, line), { input: step.inputs.stdin, timeoutMs: 180_000 });
}

/** sha256 of every file a step would install (or "absent"), the tunnel user, the firewall table, and each service's main PID and start. */
async function vpsState(files: readonly string[]): Promise<Record<string, string>> {
    const units = ["nginx", "coturn", "ssh", "nftables"];
    const script = [
        ...files.map((f) => `printf '%s ' ${shellQuote(f)}; if [ -f ${shellQuote(f)} ]; then sha256sum < ${shellQuote(f)} | cut -d' ' -f1; else echo absent; fi`),
        `printf 'sites-enabled '; readlink /etc/nginx/sites-enabled/overlay-headscale || echo absent`,
        `printf 'user-${tunnelUser} '; id -u ${tunnelUser} 2>/dev/null || echo absent`,
        ...units.map((u) => `printf '%s ' ${u}; systemctl show -p MainPID -p ActiveEnterTimestampMonotonic -p InvocationID --value ${u} | tr '\\n' ' '; echo`),
        // Rules with their handles (new handles would mean a reload), without the rate limiter's state.
        `printf 'nft '; (nft -s -a list chain inet overlay_firewall input 2>/dev/null || echo absent) | sha256sum | cut -d' ' -f1`,
    ].join("\n");
    const r = await vm.ssh(script);
    assert.equal(r.status, 0, r.stderr);
    return Object.fromEntries(r.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1).trim()]));
}

/** What a hand edit on the VM would change: each step file's sha256, the enabled site, the tunnel user, and the firewall table (terse: no handles, no rate limiter state). */
async function appliedState(): Promise<Record<string, string>> {
    const services = new Set(["nginx", "coturn", "ssh", "nftables", "nft"]);
    const files = Object.fromEntries(Object.entries(await vpsState(stepPaths)).filter(([key]) => !services.has(key)));
    const table = await vm.ssh("(nft -s -t list table inet overlay_firewall 2>/dev/null || echo absent) | sha256sum | cut -d' ' -f1");
    assert.equal(table.status, 0, table.stderr);
    return { ...files, table: table.stdout.trim() };
}

/** The workflow's drift summary (scripts/vps-drift-summary.sh) of this pulumi output. */
async function driftSummary(output: string): Promise<string> {
    const log = path.join(run, "pulumi-output.log");
    fs.writeFileSync(log, output);
    return (await mustExec(undefined, "bash", [path.join(repoRoot, "scripts", "vps-drift-summary.sh"), log])).stdout;
}

/** The four hand edits of the drift tests: each on the VM, and what the step's check must name. */
const driftEdits = [
    { step: "nginx", edit: "the nginx site broken by hand", script: `printf 'this is not nginx;\\n' >> ${nginxSitePath}`, names: /overlay-headscale: its content differs/ },
    { step: "coturn", edit: "coturn's config replaced, as a package upgrade would, and coturn restarted", script: `printf 'listening-port=3478\\nno-cli\\n' > ${turnserverConfPath} && systemctl restart coturn`, names: /turnserver\.conf: its content differs/ },
    { step: "firewall", edit: "nft flush ruleset", script: "nft flush ruleset", names: /the firewall table overlay_firewall is not loaded/ },
    { step: "tunnel-endpoint", edit: "the tunnel user's authorized_keys without its restrictions", script: `sed -i 's/^[^ ]* ssh-ed25519 /ssh-ed25519 /' ${authorizedKeysPath}`, names: /authorized_keys: its content differs/ },
] as const;

/** The files the program's VPS steps install. */
const stepPaths = [authorizedKeysPath, sshdDropInPath, backupAuthorizedKeysPath, backupSshdDropInPath, nginxSitePath, turnserverConfPath, firewallPath,
    providedTlsFiles(hostname).certificate, providedTlsFiles(hostname).privateKey, nginxLimitsPath, tunnelLimitsPath, "/etc/nginx/nginx.conf"];

/** The VPS half of the planned stack, as a user applies it with --target: the two SSH keypairs and the VPS edge with their children. */
function vpsHalf(): string[] {
    return planned.filter((u) => /::(vps|tunnel|backup-store)$|VpsEdge\$|TunnelKeypair\$/.test(u));
}

function isSelfReference(urn: string): boolean {
    return urn.includes("::pulumi:pulumi:StackReference::");
}

/** Later steps need the built stack; without it they fail at once, not by timeout. */
function needUp(): void {
    assert.ok(built, "pulumi up did not finish: see the failure above");
}

/** What an update did to each resource, from Pulumi's progress lines: "+- command:local:Command router-key-mint replaced". */
function changedResources(text: string): string[] {
    const done = /^(\+\+|\+-|--|\+|~|-) +(\S+) (\S+) (created|updated|replaced|deleted)( replacement| original)?\b/;
    const lines = text.split("\n").map((l) => l.trim().match(done)).filter((m): m is RegExpMatchArray => m !== null);
    return [...new Set(lines.map((m) => `${m[1]} ${m[2]} ${m[3]} ${m[4]}${m[5] ?? ""}`))];
}

describe("the overlay end to end: the Pulumi CLI, a real control plane, a Debian VM as the VPS, real headscale and Tailscale", { timeout: bound }, () => {
    const watchdog = setTimeout(() => {
        console.error(`e2e: the ${bound / 60_000}-minute bound is reached; stopping`);
        void cleanup().finally(() => process.exit(1));
    }, bound);
    watchdog.unref();

    async function cleanup() {
        await node2?.stop();
        await node?.stop();
        cluster?.stop();
        vm?.stop();
        world?.destroy();
        fs.rmSync(run, { recursive: true, force: true });
    }

    before(async () => {
        for (const tool of ["qemu-system-x86_64", "qemu-img", "socat", "ssh", "autossh", "setpriv", "openssl", "curl", "nft", "headscale", "tailscale", "tailscaled",
            "containerboot", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"]) requireTool(tool);
        image = readImage(imageDir);
        world = createWorld(hostname, forwards);
        // Cluster DNS for the tunnel's target: the Service's pods share home's network.
        fs.appendFileSync(path.join(world.home.etc, "hosts"), `127.0.0.1 headscale.${namespace}.svc\n`);
        fs.appendFileSync(path.join(world.home2.etc, "hosts"), `${homeAddress} headscale.${namespace}.svc\n`);
        world.lan.start(process.execPath, [path.join(__dirname, "httpService.js"), lanServiceAddress, String(servicePort), "lan-service"]);
        world.home.start(process.execPath, [path.join(__dirname, "httpService.js"), clusterServiceAddress, String(servicePort), "cluster-service"]);

        const vmStarted = Date.now();
        const booting = bootVm(image, path.join(run, "vm"), world.wan, forwards);
        const clusterStarted = Date.now();
        cluster = await startControlPlane(world.home, path.join(run, "cluster"), { advertiseAddress: homeAddress, nodeNames: [nodeName, node2Name], serviceCidr: "10.96.0.0/24" });
        report(`control plane: ready ${elapsed(Date.now() - clusterStarted)} after start`);
        // This process reaches the API server in home through a Unix socket relayed into it.
        const apiSocket = path.join(run, "apiserver.sock");
        world.home.start(requireTool("socat"), [`UNIX-LISTEN:${apiSocket},fork,mode=600`, "TCP:127.0.0.1:6443"]);
        assert.ok(await waitUntil(() => fs.existsSync(apiSocket), 10_000), "the API server relay did not start");
        const client = (cert: string, key: string) => kubeApi({ server: "https://127.0.0.1:6443", socketPath: apiSocket, caFile: cluster.caFile, certFile: cert, keyFile: key });
        startNode = (name, ns, address) => startNodeAgent({
            api: client(cluster.nodeCredentials[name].certFile, cluster.nodeCredentials[name].keyFile),
            adminApi: client(cluster.adminCertFile, cluster.adminKeyFile),
            home: ns,
            root: path.join(run, name),
            stateRoot: path.join(run, "tailscale-state"),
            nodeName: name,
            nodeAddress: address,
            // The router trusts the test CA (its manifest already keeps its logs to itself).
            extraEnv: { SSL_CERT_FILE: path.join(ca, "ca.pem") },
        });
        node = await startNode(nodeName, world.home, homeAddress);

        // kubectl for the program and this test: the real one, but `exec` runs in the node's processes.
        const wrapperDir = path.join(run, "kubectl-wrapper");
        fs.mkdirSync(wrapperDir);
        fs.copyFileSync(path.join(__dirname, "kubectl-wrapper.sh"), path.join(wrapperDir, "kubectl"));
        fs.chmodSync(path.join(wrapperDir, "kubectl"), 0o755);
        kubectlEnv = { PATH: `${wrapperDir}:${process.env.PATH}`, E2E_KUBECTL: requireTool("kubectl"), E2E_EXEC_DIR: node.execDir };
        const projectDir = path.join(run, "project");
        fs.mkdirSync(projectDir);
        project = pulumiProject({ ns: world.home, dir: projectDir, pathPrefix: [wrapperDir], env: { E2E_KUBECTL: kubectlEnv.E2E_KUBECTL, E2E_EXEC_DIR: node.execDir } });

        vm = await booting;
        report(`VM: ssh answers ${elapsed(Date.now() - vmStarted)} after boot`);
        // A listener on a port the firewall must close, to see it answer before and not after.
        const listeners = await vm.ssh([
            "systemd-run -q --unit=e2e-probe-tcp socat TCP-LISTEN:5555,fork,reuseaddr SYSTEM:'echo open'",
            "systemd-run -q --unit=e2e-probe-udp socat UDP-RECVFROM:5555,fork SYSTEM:'echo open'",
        ].join(" && "));
        assert.equal(listeners.status, 0, listeners.stderr);
        tls = await makeCertificate();
    }, { timeout: 420_000 });

    after(async () => {
        if (process.env.OVERLAY_E2E_KEEP && world) {
            // For a person debugging: keep everything up a while (the watchdog still applies).
            console.log(`kept for 10 minutes: namespaces ${[world.wan, world.home, world.lan, world.home2, world.device].map((n) => n.name).join(" ")}; run directory ${run}`);
            await new Promise((resolve) => setTimeout(resolve, 600_000));
        }
        clearTimeout(watchdog);
        console.log(`\nmeasured:\n  ${timings.join("\n  ")}`);
        await cleanup();
    }, { timeout: 660_000 });

    it("before the firewall, the probe sees the test listener (so a closed port below means closed)", async () => {
        const seen = await waitUntil(async () => {
            const r = await probe(["tcp/22", "tcp/5555", "udp/5555"]);
            return r["tcp/22"] && r["tcp/5555"] && r["udp/5555"];
        }, 30_000, 1_000);
        assert.ok(seen, "the probe does not see the VM's test listeners");
    });

    it("bad input: a config that fails validation stops pulumi preview before anything is created, naming the key", async () => {
        await mustPulumi(project, ["stack", "init", "bad"]);
        await configure("bad", { ...stackConfig(), vpsSshPort: 70000 }, { vpsSshPrivateKey: image.privateKey, tlsPrivateKey: tls.privateKey });
        const r = await project.run(["preview", "--stack", "bad"]);
        assert.notEqual(r.status, 0);
        assert.match(r.stdout + r.stderr, /overlay:vpsSshPort must be a whole number from 1 to 65535 \(got 70000\)/);
        assert.match(r.stdout + r.stderr, /nothing was created or changed/);
        // A secret in plain text: the engine refuses it, as Pulumi.yaml declares the key secret.
        await configure("bad", { ...stackConfig(), vpsSshPrivateKey: image.privateKey }, { tlsPrivateKey: tls.privateKey });
        const plain = await project.run(["preview", "--stack", "bad"]);
        assert.notEqual(plain.status, 0);
        assert.match(plain.stdout + plain.stderr, /vpsSshPrivateKey' must be encrypted as it's secret/);
        const exported = JSON.parse((await mustPulumi(project, ["stack", "export", "--stack", "bad"])).stdout);
        assert.deepEqual(exported.deployment.resources ?? [], [], "nothing was created");
        await mustPulumi(project, ["stack", "rm", "bad", "--yes"]);
    });

    it("the example stack, set up as the README says, previews: every resource a create (acme mode leaves the secret tlsPrivateKey at its default)", async () => {
        await mustPulumi(project, ["stack", "init", "example"]);
        const file = project.stackFile("example");
        const doc = YAML.parse(fs.readFileSync(file, "utf8"));
        doc.config = YAML.parse(fs.readFileSync(path.join(repoRoot, "Pulumi.home.yaml"), "utf8")).config;
        fs.writeFileSync(file, YAML.stringify(doc));
        await mustPulumi(project, ["config", "set", "--stack", "example", "--secret", "vpsSshPrivateKey"], { input: image.privateKey });
        // No cluster is configured: the provider finds none, and a preview needs none.
        const r = await mustPulumi(project, ["preview", "--stack", "example", "--json"], { env: { KUBECONFIG: path.join(run, "no-kubeconfig") } });
        const ops = [...new Set((JSON.parse(r.stdout).steps as { op: string; urn: string }[]).filter((x) => !isSelfReference(x.urn)).map((x) => x.op))];
        assert.deepEqual(ops, ["create"]);
        await mustPulumi(project, ["stack", "rm", "example", "--yes"]);
    });

    it("pulumi preview of the fresh stack lists every resource as a create", async () => {
        await mustPulumi(project, ["stack", "init", stack]);
        await configure(stack, stackConfig(), { vpsSshPrivateKey: image.privateKey, tlsPrivateKey: tls.privateKey });
        const started = Date.now();
        const r = await mustPulumi(project, ["preview", "--stack", stack, "--json"]);
        report(`pulumi preview (fresh stack): ${elapsed(Date.now() - started)}`);
        const all = JSON.parse(r.stdout).steps as { op: string; urn: string }[];
        // The upgrade guard reads the stack's own outputs: a read, not a resource of ours.
        assert.deepEqual(all.filter((x) => isSelfReference(x.urn)).map((x) => x.op), ["read"]);
        const steps = all.filter((x) => !isSelfReference(x.urn));
        planned = steps.map((x) => x.urn);
        const ops = [...new Set(steps.map((s) => s.op))];
        assert.deepEqual(ops, ["create"], steps.filter((s) => s.op !== "create").map((s) => `${s.op} ${s.urn}`).join("\n"));
        report(`  ${steps.length} resources, every one a create`);
    });

    it("bad input: a wrong host key fails the VPS steps with a host key mismatch and changes nothing there; an unreachable cluster is named by its kubeconfig and context", async () => {
        const before = await vpsState(stepPaths);
        const wrongHostKey = placeholderKeypair("e2e: not the VPS's host key").publicKeyOpenssh.trim();
        // A kubeconfig whose server nothing answers (the API server's port + 1).
        const unreachable = path.join(run, "unreachable-kubeconfig.yaml");
        fs.writeFileSync(unreachable, fs.readFileSync(cluster.kubeconfig, "utf8").replace(":6443", ":6444"), { mode: 0o600 });
        await setConfig("vpsHostKey", wrongHostKey);
        await setConfig("kubeconfig", unreachable);
        // Without --continue-on-error the engine stops launching steps at the first failure, and which of the
        // two fails first is a race (the cluster check can fail before a VPS step has started).
        const r = await project.run(["up", "--stack", stack, "--yes", "--continue-on-error"], { timeoutMs: 300_000 });
        const text = r.stdout + r.stderr;
        assert.notEqual(r.status, 0, text);
        assert.match(text, /vps-tunnel-endpoint[\s\S]*(host key mismatch|knownhosts: key mismatch|key is unknown|unable to authenticate|host key)/i, text.slice(-4000));
        assert.match(text, new RegExp(`cannot reach the home cluster \\(kubeconfig ${unreachable.replace(/[.]/g, "\\.")}, context ${cluster.context}\\)`), text.slice(-4000));
        console.log(`the failed up said:\n${text.split("\n").filter((l) => /error|mismatch|cannot reach/i.test(l)).slice(0, 12).join("\n")}`);
        assert.deepEqual(await vpsState(stepPaths), before, "the VPS is as it was");
    });

    it("pulumi up --target of the VPS half alone, with the cluster still unreachable, builds that half", async () => {
        await setConfig("vpsHostKey", image.hostKey);
        const urns = vpsHalf();
        assert.equal(urns.length, 17, urns.join("\n"));
        const started = Date.now();
        const r = await project.run(["up", "--stack", stack, "--yes", ...urns.flatMap((u) => ["--target", u])], { timeoutMs: 900_000 });
        assert.equal(r.status, 0, `${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`);
        vpsHalfMs = Date.now() - started;
        report(`pulumi up --target (the VPS half, ${urns.length} resources, the cluster unreachable): ${elapsed(vpsHalfMs)}`);
        for (const line of r.stdout.split("\n").filter((l) => /command:remote:Command .* created/.test(l))) report(`  ${line.trim()}`);
        const user = await vm.ssh(`id -u ${tunnelUser}`, { timeoutMs: 60_000 });
        assert.equal(user.status, 0, `the tunnel user exists: ${user.stderr}\n--- the VM's console:\n${vm.serialLog().slice(-3000)}`);
    });

    it("pulumi up, the cluster fixed, builds everything else, from where the earlier ones stopped", async () => {
        await setConfig("kubeconfig", cluster.kubeconfig);
        const started = Date.now();
        const r = await project.run(["up", "--stack", stack, "--yes"], { timeoutMs: 900_000 });
        const ms = Date.now() - started;
        if (r.status !== 0) {
            const state = await vm.ssh("systemctl --no-pager --lines=20 status nginx coturn ssh; ss -tulpn; nft list ruleset", { timeoutMs: 30_000 });
            const pods = await exec(world.home, "kubectl", ["--kubeconfig", cluster.kubeconfig, "get", "pods,pvc,pv,events", "-A"], { env: kubectlEnv });
            const logs = [...node.pods.values()].flatMap((p) => p.containers.map((c) => `--- ${p.name}/${c.name}:\n${c.log().slice(-3000)}`)).join("\n");
            throw new Error(`pulumi up exited ${r.status}:\n${r.stdout.slice(-8000)}\n${r.stderr.slice(-3000)}\n--- the cluster:\n${pods.stdout}\n--- the node agent:\n${node.notes()}\n${logs}\n--- the VPS:\n${state.stdout}${state.stderr}\n--- the VM's console:\n${vm.serialLog().slice(-3000)}`);
        }
        report(`pulumi up (everything else): ${elapsed(ms)}; the whole stack in these two: ${elapsed(vpsHalfMs + ms)}`);
        outputs = await readOutputs();
        assert.equal(outputs.vpsHostKey, image.hostKey, "the tunnel step reports the VM's own host key");
        assert.equal(outputs.loginServer, `https://${hostname}`);
        // The router registered with the minted key, and the approval step left exactly the LAN.
        const nodes = parseNodeRoutes((await headscaleCli("nodes", "list-routes", "--output", "json")).stdout);
        const router = nodes.find((n) => n.name === "home-router");
        assert.deepEqual(router?.approved, ["192.168.1.0/24"], JSON.stringify(nodes));
        // The manifest's env reached tailscaled: it uploads no logs.
        const tailscaleLog = node.pod(namespace, "subnet-router")!.containers.find((c) => c.name === "tailscale")!.log();
        assert.match(tailscaleLog, /envknob: TS_NO_LOGS_NO_SUPPORT="true"/);
        built = true;
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

        const line = parse(outputs.userKeys.phone.tailscaleUp).map(String);
        assert.deepEqual(line.slice(0, 2), ["tailscale", "up"]);
        assert.ok(line.includes("--accept-routes"), "the line accepts the LAN routes");
        // The test machine's DNS stays untouched; the rest is the program's line as given.
        const r = await exec(world.device, requireTool("tailscale"), [`--socket=${socket}`, ...line.slice(1), "--accept-dns=false", "--hostname=phone", "--timeout=90s"], { env, timeoutMs: 120_000 });
        assert.equal(r.status, 0, `tailscale up: ${r.stderr}\n${device.log().slice(-3000)}`);
    });

    it("the device reaches the LAN service through the subnet route, relayed by the VPS", async () => {
        needUp();
        const ms = await untilDeviceReachesLan(120_000);
        report(`device → LAN service: first answer after ${elapsed(ms)}`);
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
        const netcheck = JSON.parse(r.stdout);
        assert.equal(netcheck.UDP, true, r.stdout);
        // Only a server inside the VM sees the device as QEMU's 10.0.2.2.
        assert.match(String(netcheck.GlobalV4), /^10\.0\.2\.2:\d+$/, r.stdout);
        assert.ok(netcheck.RegionLatency?.["999"] > 0, `region 999 latency: ${r.stdout}`);
        // ...and there, only coturn listens on udp/3478.
        const listeners = await vm.ssh("ss -Hulnp 'sport = :3478'");
        assert.match(listeners.stdout, /10\.0\.2\.15:3478.*"turnserver"/, listeners.stdout);
        assert.doesNotMatch(listeners.stdout.replace(/.*"turnserver".*\n?/g, ""), /\S/, "nothing else on udp/3478");
    });

    it("the embedded DERP (region 999) is reachable through nginx and the tunnel", async () => {
        needUp();
        const r = await tailscale("debug", "derp", "999");
        assert.equal(r.status, 0, r.stderr);
        const derp = JSON.parse(r.stdout);
        // This VPS has no IPv6 (the DERP map says "none"), which the checker reports anyway.
        assert.deepEqual((derp.Errors ?? []).filter((e: string) => !/ over IPv6: /.test(e)), [], r.stdout);
        assert.ok((derp.Info as string[]).some((l) => /Successfully established a DERP connection/.test(l)), r.stdout);
    });

    it("only the allow-listed ports of the VM answer", async () => {
        needUp();
        const result = await probe([...allowed, ...closed]);
        assert.deepEqual(result, Object.fromEntries([...allowed.map((p) => [p, true]), ...closed.map((p) => [p, false])]));
    });

    it("the tunnel user cannot get a shell, nor any forward but its own", async () => {
        needUp();
        const secret = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "secret", "subnet-router-credentials", "--output=json")).stdout).data;
        const key = path.join(run, "tunnel_key");
        fs.writeFileSync(key, Buffer.from(secret["tunnel-key"], "base64"), { mode: 0o600 });
        const known = path.join(run, "tunnel_known_hosts");
        fs.writeFileSync(known, Buffer.from(secret.known_hosts, "base64"));
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

    it("a second pulumi up changes nothing, preview --expect-no-changes agrees, and a targeted no-op up of the VPS half is as quick", async () => {
        needUp();
        const started = Date.now();
        const r = await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        const noop = Date.now() - started;
        assert.match(r.stdout, /Resources:\n\s+\d+ unchanged\n/, r.stdout.slice(-3000));
        const previewStarted = Date.now();
        await mustPulumi(project, ["preview", "--stack", stack, "--expect-no-changes"]);
        const preview = Date.now() - previewStarted;

        // The same engine, a one-resource program: what a no-op `pulumi up` costs at the least.
        const one = path.join(run, "one-resource");
        fs.mkdirSync(one);
        fs.writeFileSync(path.join(one, "index.ts"), 'import * as random from "@pulumi/random";\nexport const id = new random.RandomId("one", { byteLength: 4 }).hex;\n');
        fs.writeFileSync(path.join(one, "package.json"), '{ "name": "one-resource", "main": "index.ts" }\n');
        fs.copyFileSync(path.join(repoRoot, "tsconfig.json"), path.join(one, "tsconfig.json"));
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(one, "node_modules"));
        const small = pulumiProject({ ns: world.home, dir: one, pathPrefix: [], pulumiYaml: "name: one-resource\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n" });
        await mustPulumi(small, ["stack", "init", "one"]);
        await mustPulumi(small, ["up", "--yes"]);
        const oneStarted = Date.now();
        const oneNoop = await mustPulumi(small, ["up", "--yes"]);
        const oneMs = Date.now() - oneStarted;
        assert.match(oneNoop.stdout, /2 unchanged/);
        report(`no-op pulumi up: ${elapsed(noop)}; one-resource program: ${elapsed(oneMs)}; ratio ${(noop / oneMs).toFixed(1)}x; preview --expect-no-changes: ${elapsed(preview)}`);

        // Users apply one half with --target: the VPS steps and what they need.
        const urns = vpsHalf();
        const targetStarted = Date.now();
        const targeted = await mustPulumi(project, ["up", "--stack", stack, "--yes", ...urns.flatMap((u) => ["--target", u])]);
        report(`targeted no-op pulumi up of the VPS half (${urns.length} resources): ${elapsed(Date.now() - targetStarted)}`);
        assert.doesNotMatch(targeted.stdout, / (created|updated|replaced|deleted)\b/);
    });

    it("pulumi refresh finds the state true, and preview --expect-no-changes still agrees", async () => {
        needUp();
        const started = Date.now();
        const r = await mustPulumi(project, ["refresh", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        report(`pulumi refresh: ${elapsed(Date.now() - started)}`);
        assert.doesNotMatch(r.stdout, /^\s*~ .* updated/m, r.stdout.slice(-3000));
        const preview = await project.run(["preview", "--stack", stack, "--expect-no-changes", "--diff"]);
        assert.equal(preview.status, 0, `a diff after refresh:\n${preview.stdout.slice(-6000)}`);
    });

    it("fault: the tunnel's ssh is killed; autossh restores it and the device reaches the LAN again", async () => {
        needUp();
        const tunnel = node.pod(namespace, "subnet-router")!.containers.find((c) => c.name === "tunnel")!;
        // hold-tunnel.sh → autossh → ssh (the script's own `ssh -O` calls are short-lived children of the script).
        const autossh = (await exec(undefined, "pgrep", ["-P", String(tunnel.process.pid), "-x", "autossh"])).stdout.trim();
        const sshPid = async () => (await exec(undefined, "pgrep", ["-P", autossh, "-x", "ssh"])).stdout.trim();
        const before = await sshPid();
        assert.match(before, /^\d+$/, "autossh's ssh child");
        const killed = Date.now();
        process.kill(Number(before), "SIGKILL");
        assert.ok(await waitUntil(async () => /^\d+$/.test(await sshPid()) && (await sshPid()) !== before, 60_000, 50), "autossh did not start a new ssh");
        const newSsh = Date.now() - killed;
        await untilDeviceReachesLan(120_000);
        report(`tunnel fault: new ssh after ${elapsed(newSsh)}; the device reached the LAN again after ${elapsed(Date.now() - killed)}`);
    });

    it("Upgrade requests went through nginx and the tunnel both ways (control and DERP)", async () => {
        needUp();
        // nginx logs an upgraded connection when it ends: the tunnel fault ended the control
        // (ts2021) and DERP connections of both nodes. 101 and bytes sent: switched, then used.
        const r = await vm.ssh("awk '$9 == 101 && $10 > 0 {print $6, $7}' /var/log/nginx/access.log | sed 's/[?].*//' | sort -u");
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), ['"GET /derp', '"POST /ts2021'], r.stdout);
    });

    it("fault: the headscale pod is deleted; its StatefulSet brings it back and the same nodes reconnect without new keys", async () => {
        needUp();
        const nodes = async () => (JSON.parse((await headscaleCli("nodes", "list", "--output", "json")).stdout) as any[])
            .map((n) => `${n.id} ${n.name} ${n.machine_key} ${n.node_key}`).sort();
        const before = await nodes();
        const keysBefore = JSON.parse((await headscaleCli("preauthkeys", "list", "--output", "json")).stdout).length;
        const oldUid = (await pod("headscale-0")).metadata.uid;
        const started = Date.now();
        await kubectl(`--namespace=${namespace}`, "delete", "pod", "headscale-0", "--wait=true", "--timeout=60s");
        await kubectl(`--namespace=${namespace}`, "wait", "pod/headscale-0", "--for=condition=Ready", "--timeout=120s");
        const ready = Date.now() - started;
        assert.notEqual((await pod("headscale-0")).metadata.uid, oldUid, "a new pod");
        await untilDeviceReachesLan(180_000);
        report(`headscale pod deleted: a new one ready after ${elapsed(ready)}; the device reached the LAN again after ${elapsed(Date.now() - started)}`);
        assert.deepEqual(await nodes(), before, "the same nodes with the same keys");
        assert.equal(JSON.parse((await headscaleCli("preauthkeys", "list", "--output", "json")).stdout).length, keysBefore, "no key was minted");
    });

    it("every VPS step a second time changes nothing and restarts nothing", async () => {
        needUp();
        const before = await vpsState(stepPaths);
        let total = 0;
        for (const step of await remoteCommands()) {
            const r = await rerun(step, step.inputs.create);
            assert.equal(r.status, 0, `${step.name}: ${r.stderr}`);
            total += r.ms;
        }
        report(`second run of all VPS steps by hand: ${elapsed(total)}`);
        assert.deepEqual(await vpsState(stepPaths), before);
    });

    it("nginx and the tunnel run with the raised limits: worker_connections in nginx.conf's events block, and the open-files limit in nginx's workers and the tunnel's SSH session (set by pam_limits)", async () => {
        needUp();
        const r = await vm.ssh([
            "awk '/^events \\{/,/^\\}/' /etc/nginx/nginx.conf | grep -E '^[[:space:]]*worker_connections'",
            `for pid in $(pgrep -f '^nginx: worker') $(pgrep -u ${tunnelUser} -x sshd); do`,
            "    printf '%s: ' \"$(tr '\\0' ' ' < /proc/$pid/cmdline)\"; grep 'Max open files' /proc/$pid/limits",
            "done",
        ].join("\n"));
        assert.equal(r.status, 0, r.stderr);
        const [connections, ...processes] = r.stdout.trim().split("\n");
        assert.match(connections, new RegExp(`^\\s*worker_connections ${nginxWorkerConnections};$`));
        for (const kind of [/nginx: worker/, new RegExp(`sshd: ${tunnelUser}`)]) {
            assert.ok(processes.some((p) => kind.test(p)), `no ${kind} process: ${r.stdout}`);
        }
        for (const p of processes) assert.match(p, new RegExp(`Max open files\\s+${vpsOpenFiles}\\s+${vpsOpenFiles}\\s+files`), p);
        report(`limits on the VM: ${connections.trim()} open files ${vpsOpenFiles} in ${processes.length} processes (nginx workers, the tunnel's session)`);
    });

    it("drift: the VPS as applied, and pulumi refresh finds no drift in it", async () => {
        needUp();
        applied = await appliedState();
        const r = await mustPulumi(project, ["refresh", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        assert.doesNotMatch(r.stdout, /has drifted/, r.stdout.slice(-3000));
    });

    for (const drift of driftEdits) {
        it(`drift: ${drift.edit}: preview --refresh names the ${drift.step} step, up --refresh applies that step again and no other, the VM is back as applied, and the device reaches the LAN`, async () => {
            needUp();
            assert.ok(applied, "the applied state was recorded");
            const edited = await vm.ssh(drift.script);
            assert.equal(edited.status, 0, edited.stderr);
            assert.notDeepEqual(await appliedState(), applied, "the edit changed the VM");
            if (drift.step === "nginx") assert.notEqual((await vm.ssh("nginx -t")).status, 0, "the edited site fails nginx -t");

            const preview = await mustPulumi(project, ["preview", "--stack", stack, "--refresh"], { timeoutMs: 300_000 });
            const named = [...new Set(preview.stdout.split("\n").map((l) => /overlay: the VPS step (.*)$/.exec(l)?.[1]).filter((l): l is string => !!l))];
            assert.ok(named.length > 0 && named.every((l) => l.startsWith(`${drift.step} has drifted: `)), preview.stdout.slice(-4000));
            assert.ok(named.some((l) => drift.names.test(l)), named.join("\n"));
            assert.match(preview.stdout, new RegExp(`~ +pulumi-nodejs:dynamic:Resource vps-${drift.step}-state update\\b`));
            assert.match(preview.stdout, /Resources:\n\s+~ 1 to update\n/, preview.stdout.slice(-3000));
            assert.notDeepEqual(await appliedState(), applied, "a preview repairs nothing");
            const saved = (await stateResources()).find((r) => r.urn.endsWith(`::vps-${drift.step}-state`));
            assert.deepEqual(saved?.outputs.drift, [], "a preview saves no refreshed state");

            const started = Date.now();
            const up = await mustPulumi(project, ["up", "--stack", stack, "--refresh", "--yes"], { timeoutMs: 300_000 });
            const took = Date.now() - started;
            assert.deepEqual(changedResources(up.stdout), [`~ pulumi-nodejs:dynamic:Resource vps-${drift.step}-state updated`], up.stdout.slice(-4000));
            assert.deepEqual(await appliedState(), applied, "the VM is back as the first pulumi up left it");
            await untilDeviceReachesLan(60_000);
            const summary = await driftSummary(up.stdout);
            assert.match(summary, new RegExp(`^- \\*\\*${drift.step}\\*\\* \\(repaired: this run applied the step again\\):$`, "m"), summary);
            report(`drift, ${drift.edit}: preview --refresh named ${named.map((l) => `"${l}"`).join(", ")}; up --refresh repaired it in ${elapsed(took)}, changing only vps-${drift.step}-state`);
        });
    }

    it("drift: with no edit, pulumi up --refresh changes nothing and applies nothing; timed against a no-op pulumi up", async () => {
        needUp();
        const before = await vpsState(stepPaths);
        const upStarted = Date.now();
        const plain = await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        const upMs = Date.now() - upStarted;
        const refreshStarted = Date.now();
        const refreshed = await mustPulumi(project, ["up", "--stack", stack, "--refresh", "--yes"], { timeoutMs: 300_000 });
        const refreshMs = Date.now() - refreshStarted;
        for (const r of [plain, refreshed]) {
            assert.match(r.stdout, /Resources:\n\s+\d+ unchanged\n/, r.stdout.slice(-3000));
            assert.deepEqual(changedResources(r.stdout), []);
        }
        assert.doesNotMatch(refreshed.stdout, /has drifted/);
        assert.equal(await driftSummary(refreshed.stdout), "No drift on the VPS: every step matched what it applied.\n");
        // As the rotation workflow runs it: one refresh, no preview first.
        const skipStarted = Date.now();
        const skipped = await mustPulumi(project, ["up", "--stack", stack, "--refresh", "--skip-preview", "--yes"], { timeoutMs: 300_000 });
        const skipMs = Date.now() - skipStarted;
        assert.deepEqual(changedResources(skipped.stdout), []);
        // Where the time goes: the VPS steps' checks alone, as the state resources run them, and one by one by hand.
        const states = (await stateResources()).filter((r) => r.type === "pulumi-nodejs:dynamic:Resource").map((r) => r.urn as string);
        const vpsStarted = Date.now();
        await mustPulumi(project, ["refresh", "--stack", stack, "--skip-preview", "--yes", ...states.flatMap((u) => ["--target", u])], { timeoutMs: 300_000 });
        const vpsMs = Date.now() - vpsStarted;
        const checks: string[] = [];
        for (const step of await remoteCommands()) {
            const r = await rerun(step, step.inputs.create.replace(/ apply$/, " check"));
            assert.equal(r.status, 0, `${step.name}: ${r.stderr}`);
            assert.equal(r.stdout, "", `${step.name} found drift: ${r.stdout}`);
            checks.push(`${step.name} ${elapsed(r.ms)}`);
        }
        // Same files, same table, and the same service processes: no step ran its apply.
        assert.deepEqual(await vpsState(stepPaths), before);
        report(`no-edit pulumi up --refresh: ${elapsed(refreshMs)}; no-op pulumi up: ${elapsed(upMs)}; ratio ${(refreshMs / upMs).toFixed(2)}x`);
        report(`  with --skip-preview (the rotation workflow's run): ${elapsed(skipMs)}, ratio ${(skipMs / upMs).toFixed(2)}x; pulumi refresh --skip-preview of the ${states.length} VPS state resources alone: ${elapsed(vpsMs)}`);
        report(`  each step's check over its own SSH connection to the VM (TCG): ${checks.join(", ")}`);
    });

    it("bad input: the VPS unreachable during refresh: an error naming the host; the state keeps every step, and nothing is deleted or re-created", async () => {
        needUp();
        const resources = async () => (await stateResources()).filter((r) => /^(command:remote:Command|pulumi-nodejs:dynamic:Resource)$/.test(r.type))
            .map((r) => JSON.stringify({ urn: r.urn, id: r.id, outputs: r.outputs })).sort();
        const before = await resources();
        const vpsBefore = await vpsState(stepPaths);
        // New SSH connections from home to the VPS are refused; the router's open tunnel stays.
        mustRun(world.home, "nft", ["-f", "-"], `table inet e2e_vps_unreachable {\n  chain output {\n    type filter hook output priority 0;\n    ip daddr ${vpsAddress} tcp dport 22 ct state new reject with tcp reset\n  }\n}\n`);
        try {
            for (const args of [["refresh", "--yes"], ["up", "--refresh", "--yes"]]) {
                const r = await project.run([...args, "--stack", stack], { timeoutMs: 300_000 });
                const text = `${r.stdout}\n${r.stderr}`;
                assert.notEqual(r.status, 0, `pulumi ${args.join(" ")} passed with the VPS unreachable`);
                const address = vpsAddress.replace(/\./g, "\\.");
                assert.match(text, new RegExp(`could not reach the VPS at root@${address}:22 to check the step [a-z-]+: ssh: connect to host ${address} port 22: Connection refused`), text.slice(-3000));
                assert.deepEqual(changedResources(r.stdout), [], `pulumi ${args.join(" ")} changed something`);
                if (args[0] === "refresh") report(`VPS unreachable, pulumi refresh said: ${text.split("\n").find((l) => /error: .*could not reach the VPS/.test(l))?.trim()}`);
            }
        } finally {
            world.home.run("nft", ["delete", "table", "inet", "e2e_vps_unreachable"]);
        }
        assert.deepEqual(await resources(), before, "every VPS step and its state, as they were");
        assert.deepEqual(await vpsState(stepPaths), vpsBefore);
        const preview = await project.run(["preview", "--stack", stack, "--expect-no-changes"], { timeoutMs: 300_000 });
        assert.equal(preview.status, 0, `a change after the failed refresh:\n${preview.stdout.slice(-4000)}`);
    });

    it("rotation: a pulumi up in the next window replaces only the key chain; the old key is expired, the new one valid, the router not restarted", async () => {
        needUp();
        const routerBefore = await routerPod();
        const oldKeyId = String(outputs.routerKeyId);
        const keyBefore = await routerAuthKey();
        const started = Date.now();
        // The next window's date, for this run and every later one: time does not go back.
        project.setEnv("OVERLAY_TODAY", outputs.routerKeyNextRotation);
        const r = await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        const changed = changedResources(r.stdout);
        report(`rotation pulumi up (OVERLAY_TODAY=${outputs.routerKeyNextRotation}): ${elapsed(Date.now() - started)}; changed:\n    ${changed.join("\n    ")}`);
        const names = [...new Set(changed.map((l) => l.split(" ")[2]))];
        assert.ok(names.length > 0, r.stdout.slice(-3000));
        const allowedChanges = /^(router-key-(mint|expiry)|user-keys-phone-(mint|expiry)|router-credentials|overlay-e2e)$/;
        assert.deepEqual(names.filter((n) => !allowedChanges.test(n)), [], changed.join("\n"));
        assert.ok(names.includes("router-key-mint") && names.includes("router-key-expiry") && names.includes("router-credentials"), changed.join("\n"));

        outputs = await readOutputs();
        assert.notEqual(String(outputs.routerKeyId), oldKeyId, "a new router key");
        const keys = JSON.parse((await headscaleCli("preauthkeys", "list", "--output", "json")).stdout) as { id: number; expiration?: { seconds: number } }[];
        const expiry = (id: string) => (keys.find((k) => String(k.id) === id)?.expiration?.seconds ?? 0) * 1000;
        assert.ok(expiry(oldKeyId) <= Date.now(), "the old router key is expired");
        assert.ok(expiry(String(outputs.routerKeyId)) > Date.now(), "the new router key is valid");
        assert.notEqual(await routerAuthKey(), keyBefore, "the router's Secret holds the new key");
        const routerAfter = await routerPod();
        assert.equal(routerAfter.metadata.uid, routerBefore.metadata.uid, "the same router pod");
        assert.deepEqual(routerAfter.status.containerStatuses.map((c: any) => c.restartCount), [0, 0], "no container restarted");
        await untilDeviceReachesLan(60_000);
    });

    it("backup: the job runs while the device is connected; the encrypted file lands on the VM under the backup account, and the VM holds no plaintext", async () => {
        needUp();
        const started = Date.now();
        await kubectl(`--namespace=${namespace}`, "create", "job", "--from=cronjob/headscale-backup", "e2e-backup");
        const { succeeded, pods, reachedDuring } = await finishedJob("e2e-backup", 300_000);
        assert.ok(succeeded && pods === 1, `the backup job failed: ${await jobMessage("e2e-backup")}`);
        report(`backup job (kubectl create job --from=cronjob/headscale-backup): done after ${elapsed(Date.now() - started)}; the device reached the LAN ${reachedDuring} times meanwhile`);
        assert.ok(reachedDuring > 0, "the device reached the LAN while the backup ran");
        assert.equal(await deviceReaches(lanUrl, 5), "lan-service");

        const listing = await vm.ssh(`stat -c '%U %a %n' ${backupChroot} ${backupChroot}/backups ${backupChroot}/backups/*`);
        assert.equal(listing.status, 0, listing.stderr);
        const lines = listing.stdout.trim().split("\n");
        assert.equal(lines[0], `root 755 ${backupChroot}`);
        assert.equal(lines[1], `${backupStoreUser} 700 ${backupChroot}/backups`);
        assert.equal(lines.length, 3, listing.stdout);
        assert.match(lines[2], new RegExp(`^${backupStoreUser} \\d+ ${backupChroot}/backups/headscale-\\d{8}T\\d{6}Z\\.tar\\.age$`));
        backupName = path.basename(lines[2].split(" ")[2]);
        const head = await vm.ssh(`head -c 21 ${backupChroot}/backups/${backupName}`);
        assert.equal(head.stdout, "age-encryption.org/v1", "the file is age-encrypted");

        // The VM holds neither the noise private key nor a database, anywhere we could have written.
        const noiseKey = fs.readFileSync(path.join(await dataDir(), "noise_private.key"), "utf8").trim();
        assert.match(noiseKey, /^privkey:[0-9a-f]{64}$/);
        const grep = await vm.ssh(`grep -rlsF -e ${shellQuote(noiseKey.slice(8))} -e 'SQLite format 3' /srv /home /root /tmp /var/tmp /etc /opt 2>/dev/null; true`, { timeoutMs: 120_000 });
        assert.equal(grep.stdout.trim(), "", `plaintext on the VM: ${grep.stdout}`);
    });

    it("bad input: the backup destination unreachable: the job fails visibly, naming the host, is tried again, and headscale is not affected", async () => {
        needUp();
        assert.ok(backupName, "the backup test ran");
        const before = await pod("headscale-0");
        const cron = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "cronjob", "headscale-backup", "--output=json")).stdout);
        const lastGood = async () => (await kubectl(`--namespace=${namespace}`, "get", "cronjob", "headscale-backup", "--output=jsonpath={.status.lastSuccessfulTime}")).stdout;
        assert.ok(await waitUntil(async () => (await lastGood()) !== "", 30_000, 1_000), "the CronJob records the earlier good backup");
        const lastGoodBefore = await lastGood();
        // The CronJob's own job, as its schedule would start it, with the store's address
        // replaced by one where nothing listens (refused at once, rather than a long timeout).
        const spec = structuredClone(cron.spec.jobTemplate.spec);
        const unreachable: Record<string, string> = { STORE_HOST: "127.0.0.1", STORE_PORT: "9" };
        for (const e of spec.template.spec.containers[0].env) e.value = unreachable[e.name] ?? e.value;
        const job = {
            apiVersion: "batch/v1", kind: "Job",
            metadata: {
                name: "e2e-backup-unreachable", namespace, labels: cron.spec.jobTemplate.metadata?.labels,
                ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name: cron.metadata.name, uid: cron.metadata.uid, controller: true }],
            },
            spec,
        };
        const started = Date.now();
        await mustExec(world.home, "kubectl", ["--kubeconfig", cluster.kubeconfig, "--context", cluster.context, "create", "-f", "-"], { env: kubectlEnv, input: JSON.stringify(job) });
        const { succeeded, pods, reachedDuring } = await finishedJob(job.metadata.name, 300_000);
        const message = await jobMessage(job.metadata.name);
        report(`backup to an unreachable store: failed for good after ${elapsed(Date.now() - started)} and ${pods} tries; the device reached the LAN ${reachedDuring} times meanwhile`);
        assert.ok(!succeeded);
        assert.equal(pods, cron.spec.jobTemplate.spec.backoffLimit + 1, "the job was tried again, as its backoffLimit says");
        assert.match(message, /overlay-backup: error: could not store headscale-\d{8}T\d{6}Z\.tar\.age on 127\.0\.0\.1: .*Connection refused/, message);
        const condition = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "job", job.metadata.name, "--output=json")).stdout).status.conditions.find((c: any) => c.type === "Failed");
        assert.equal(condition?.reason, "BackoffLimitExceeded");
        // The schedule goes on: the CronJob is not suspended, and the failure is not a good backup.
        const after = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "cronjob", "headscale-backup", "--output=json")).stdout);
        assert.equal(after.spec.suspend ?? false, false);
        assert.equal(after.spec.schedule, cron.spec.schedule);
        assert.equal(await lastGood(), lastGoodBefore, "the CronJob still names the earlier good backup's time");
        const now = await pod("headscale-0");
        assert.equal(now.metadata.uid, before.metadata.uid, "the same headscale pod");
        assert.deepEqual(now.status.containerStatuses.map((c: any) => c.restartCount), before.status.containerStatuses.map((c: any) => c.restartCount));
        assert.equal(await deviceReaches(lanUrl, 5), "lan-service");
    });

    it("bad input: a full disk on the VPS: the job fails with the error, the older backups stay intact, and the next run stores again", async () => {
        needUp();
        const store = `${backupChroot}/backups`;
        const sums = async () => {
            const r = await vm.ssh(`cd ${store} && ls -1 | grep -v '^filler$' | xargs -r sha256sum --`);
            assert.equal(r.status, 0, r.stderr);
            return r.stdout;
        };
        const before = await sums();
        assert.match(before, /headscale-\d{8}T\d{6}Z\.tar\.age/);
        // The store moved onto a small filesystem of its own, with the same backups, then filled up.
        const fill = await vm.ssh([
            "set -e",
            "rm -rf /run/e2e-store && mkdir /run/e2e-store",
            `cp -a ${store}/. /run/e2e-store/`,
            `mount -t tmpfs -o size=2m,mode=0700,uid=$(id -u ${backupStoreUser}),gid=$(id -g ${backupStoreUser}) e2e-full ${store}`,
            `cp -a /run/e2e-store/. ${store}/`,
            `dd if=/dev/zero of=${store}/filler bs=4k status=none 2>/dev/null || true`,
            `df -k ${store} | tail -n 1`,
        ].join("\n"));
        assert.equal(fill.status, 0, fill.stderr);
        try {
            assert.equal(await sums(), before, "the copy holds the same backups");
            const started = Date.now();
            await kubectl(`--namespace=${namespace}`, "create", "job", "--from=cronjob/headscale-backup", "e2e-backup-full");
            const { succeeded, pods } = await finishedJob("e2e-backup-full", 300_000);
            const message = await jobMessage("e2e-backup-full");
            report(`backup to a full store: failed for good after ${elapsed(Date.now() - started)} and ${pods} tries: ${/could not store.*/.exec(message)?.[0]}`);
            assert.ok(!succeeded);
            assert.match(message, /overlay-backup: error: could not store headscale-\d{8}T\d{6}Z\.tar\.age on \S+: .*the store has [0-4] KiB free/, message);
            assert.equal(await sums(), before, "the older backups are intact, and no part of the new one is left");
        } finally {
            await vm.ssh(`umount ${store}; rm -rf /run/e2e-store`);
        }
        assert.equal(await sums(), before);
        await kubectl(`--namespace=${namespace}`, "create", "job", "--from=cronjob/headscale-backup", "e2e-backup-after");
        const next = await finishedJob("e2e-backup-after", 300_000);
        assert.ok(next.succeeded, `the next backup failed: ${await jobMessage("e2e-backup-after")}`);
        backupName = await newestBackup();
        assert.ok(!before.includes(backupName), `the next run stored a new backup: ${backupName}`);
        assert.equal(await deviceReaches(lanUrl, 5), "lan-service");
    });

    it("bad input: a backup that does not decrypt with the stack's identity, or is corrupted, is refused, and the running headscale is untouched", async () => {
        needUp();
        assert.ok(backupName, "the backup test ran");
        const before = await pod("headscale-0");
        const stranger = await mustExec(undefined, "age-keygen", []);
        const strangerRecipient = /public key: (age1\S+)/.exec(stranger.stderr + stranger.stdout)![1];
        const bogus = { wrongKey: "headscale-20000101T000000Z.tar.age", corrupted: "headscale-20000102T000000Z.tar.age" };
        const sealed = await mustExec(undefined, "age", ["-r", strangerRecipient, "-a"], { input: "not a backup" });
        const store = `${backupChroot}/backups`;
        const put = await vm.ssh([
            `printf '%s' ${shellQuote(sealed.stdout)} > ${store}/${bogus.wrongKey}`,
            // The real backup with one byte changed in its last block: age's authentication fails.
            `cp ${store}/${backupName} ${store}/${bogus.corrupted}`,
            `printf 'X' | dd of=${store}/${bogus.corrupted} bs=1 seek=$(($(stat -c %s ${store}/${bogus.corrupted}) - 20)) conv=notrunc status=none`,
            `chown ${backupStoreUser}: ${store}/${bogus.wrongKey} ${store}/${bogus.corrupted}`,
        ].join("\n"));
        assert.equal(put.status, 0, put.stderr);
        for (const name of Object.values(bogus)) {
            await setConfig("restoreBackup", name);
            const started = Date.now();
            const r = await project.run(["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
            report(`restore of ${name}: refused after ${elapsed(Date.now() - started)}`);
            assert.notEqual(r.status, 0, "pulumi up succeeded");
            assert.match(r.stdout + r.stderr, new RegExp(`refused ${name.replace(/\./g, "\\.")}: it does not decrypt with this stack's backup identity`), (r.stdout + r.stderr).slice(-3000));
            const after = await pod("headscale-0");
            assert.equal(after.metadata.uid, before.metadata.uid, "the same headscale pod");
            assert.deepEqual(after.status.containerStatuses.map((c: any) => c.restartCount), before.status.containerStatuses.map((c: any) => c.restartCount));
            assert.ok(!fs.existsSync(path.join(await dataDir(), "restore-ready")), "nothing staged");
        }
        await vm.ssh(`rm ${store}/${bogus.wrongKey} ${store}/${bogus.corrupted}`);
        await mustPulumi(project, ["config", "rm", "--stack", stack, "restoreBackup"]);
        await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        assert.equal(await deviceReaches(lanUrl, 5), "lan-service");
    });

    it("drill: headscale's volume wiped, the latest backup restored the documented way: the same noise key and node IDs, and the device reaches the LAN without a new key", async () => {
        needUp();
        const nodes = async () => (JSON.parse((await headscaleCli("nodes", "list", "--output", "json")).stdout) as any[]).map((n) => `${n.id} ${n.name}`).sort();
        const noiseKey = async () => JSON.parse((await exec(world.home, "curl", ["-sf", "--max-time", "5", `http://${clusterServiceAddress}:8080/key?v=120`])).stdout || "{}").publicKey;
        const nodesBefore = await nodes();
        const keyBefore = await noiseKey();
        assert.match(String(keyBefore), /^mkey:/);
        const keysBefore = JSON.parse((await headscaleCli("preauthkeys", "list", "--output", "json")).stdout).length;

        const wiped = Date.now();
        const data = await dataDir();
        for (const file of fs.readdirSync(data)) fs.rmSync(path.join(data, file), { recursive: true, force: true });
        await kubectl(`--namespace=${namespace}`, "delete", "pod", "headscale-0", "--wait=true", "--timeout=60s");
        await setConfig("restoreBackup", "latest");
        const r = await project.run(["up", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        // Whatever happens below, later tests start without a restore pending.
        await mustPulumi(project, ["config", "rm", "--stack", stack, "restoreBackup"]);
        assert.equal(r.status, 0, `${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`);
        const restored = Date.now() - wiped;
        const ms = await untilDeviceReachesLan(300_000);
        report(`drill: wipe → pulumi up (restoreBackup latest) done after ${elapsed(restored)}; the device reached the LAN ${elapsed(Date.now() - wiped)} after the wipe`);
        assert.ok(ms >= 0);
        assert.match(r.stdout + r.stderr, /job\.batch\/headscale-restore-\S+ succeeded/);
        const aside = fs.readdirSync(data).filter((f) => f.startsWith("pre-restore-"));
        assert.equal(aside.length, 1, "the wiped state was kept aside");
        assert.equal(fs.readFileSync(path.join(data, aside[0], "replaced-by"), "utf8").trim(), backupName, "the latest backup was restored");
        assert.equal(await noiseKey(), keyBefore, "the same noise public key");
        assert.deepEqual(await nodes(), nodesBefore, "the same nodes with the same IDs");
        assert.equal(JSON.parse((await headscaleCli("preauthkeys", "list", "--output", "json")).stdout).length, keysBefore, "no key was minted");
        await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
    });

    it("bad input: pulumi preview refuses a skipped minor version and a downgrade with the allowed versions; the next patch shows the backup before the StatefulSet's change", async () => {
        needUp();
        const current = String(outputs.headscaleVersion);
        assert.equal(current, "0.29.2");
        for (const [tag, what] of [["0.31.0", "skips a minor version"], ["0.28.9", "is older than the running 0.29.2"]]) {
            await setConfig("headscaleImage", `ghcr.io/juanfont/headscale:${tag}`);
            const r = await project.run(["preview", "--stack", stack], { timeoutMs: 300_000 });
            assert.notEqual(r.status, 0, `preview accepted ${tag}`);
            assert.match(r.stdout + r.stderr, new RegExp(`headscaleImage: ${tag.replace(/\./g, "\\.")} ${what}.*Allowed next: 0\\.29\\.2 or a later 0\\.29\\.x patch, or 0\\.30\\.x`));
        }
        await setConfig("headscaleImage", "ghcr.io/juanfont/headscale:0.29.3");
        const r = await mustPulumi(project, ["preview", "--stack", stack], { timeoutMs: 300_000 });
        const backupAt = r.stdout.search(/headscale-backups-before-upgrade +replace/);
        const statefulSetAt = r.stdout.search(/headscale-statefulset +update/);
        assert.ok(backupAt >= 0 && statefulSetAt >= 0, r.stdout.slice(-4000));
        assert.ok(backupAt < statefulSetAt, "the backup comes before the StatefulSet's change");
        await setConfig("headscaleImage", "ghcr.io/juanfont/headscale:0.29.2");
        await mustPulumi(project, ["preview", "--stack", stack, "--expect-no-changes"], { timeoutMs: 300_000 });
    });

    it("routerReplicas 2: pulumi up adds a second router on the second node, restarting neither the first nor headscale; both register with their routes approved, and one is primary", async () => {
        needUp();
        node2 = await startNode(node2Name, world.home2, home2Address);
        const routerBefore = await routerPod();
        const headscaleBefore = (await pod("headscale-0")).metadata.uid;
        await setConfig("routerReplicas", "2");
        const lan = watchLan();
        const started = Date.now();
        const r = await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        const during = await lan.stop();
        const changed = changedResources(r.stdout);
        report(`routerReplicas 2: pulumi up ${elapsed(Date.now() - started)}; the device reached the LAN ${during.ok} times, failed ${during.failed}; changed:\n    ${changed.join("\n    ")}`);
        const names = [...new Set(changed.map((l) => l.split(" ")[2]))];
        assert.deepEqual(names.filter((n) => !/^(router-1-(deployment|node-removal|routes|routes-find-node|routes-approve)|router-pdb|router-role|headscale-networkpolicy|overlay-e2e)$/.test(n)), [], changed.join("\n"));
        const routerAfter = await routerPod();
        assert.equal(routerAfter.metadata.uid, routerBefore.metadata.uid, "router 0 kept its pod");
        assert.deepEqual(routerAfter.status.containerStatuses.map((c: any) => c.restartCount), [0, 0], "router 0 restarted nothing");
        assert.equal((await pod("headscale-0")).metadata.uid, headscaleBefore, "headscale kept its pod");

        let table: Awaited<ReturnType<typeof routeTable>> = [];
        const settled = await waitUntil(async () => {
            table = (await routeTable()).filter((n) => n.name.startsWith("home-router"));
            return table.length === 2 && table.every((n) => n.approved.includes(lanRoute) && n.online) && table.filter((n) => n.primary.includes(lanRoute)).length === 1;
        }, 120_000, 2_000);
        assert.ok(settled, `two routers, approved, one primary: ${JSON.stringify(table)}`);
        assert.deepEqual(table.map((n) => n.name).sort(), haRouters.map((r) => r.nodeName));
        const listing = (await headscaleCli("nodes", "list-routes")).stdout.replace(/\x1b\[[0-9;]*m/g, "");
        report(`  headscale nodes list-routes (the README's kubectl line):\n${listing.trimEnd().split("\n").map((l) => `      ${l}`).join("\n")}`);
        report(`  the tunnel is held by ${await tunnelHolder(routerDeployments)}`);
        const placement = await Promise.all(routerDeployments.map(async (d) => (await routerPodOf(d)).nodeName));
        assert.deepEqual(placement, [nodeName, node2Name], "one router on each node");
        await untilDeviceReachesLan(60_000);
    });

    let killed = "";
    let survivor = "";
    it("failover: the primary router's processes killed, as a node loss would: the other serves the LAN, and takes the tunnel if the killed one held it", async () => {
        needUp();
        const primary = deploymentOf((await primaryRouter())!);
        const other = routerDeployments.find((d) => d !== primary)!;
        // Let the primary hold the tunnel too, so that killing it measures both failovers.
        const holder = await tunnelHolder(routerDeployments);
        if (holder !== primary) {
            const h = await routerPodOf(holder!);
            const started = Date.now();
            h.agent.lose(namespace, h.name, ["tunnel"]);
            assert.ok(await waitUntil(async () => (await tunnelHolder(routerDeployments)) === primary, 30_000, 250), "the primary did not take the tunnel");
            report(`tunnel takeover (the holder's tunnel container killed): the other router held the port after ${elapsed(Date.now() - started)}`);
            h.agent.revive(namespace, h.name);
        }
        await untilDeviceReachesLan(60_000);
        const victim = await routerPodOf(primary);
        const killedAt = Date.now();
        victim.agent.lose(namespace, victim.name);
        const [lanMs, tunnelMs] = await Promise.all([
            untilDeviceReachesLan(90_000),
            (async () => {
                assert.ok(await waitUntil(headscaleThroughVps, 90_000, 250), "headscale did not answer through the VPS again");
                return Date.now() - killedAt;
            })(),
        ]);
        report(`failover, the primary (${primary}, holding the tunnel) killed: the device reached the LAN again after ${elapsed(lanMs)} (goal 15 s); headscale answered through the VPS again after ${elapsed(tunnelMs)} (goal 30 s)`);
        assert.equal(deploymentOf((await primaryRouter()) ?? ""), other, "the other router is primary");
        assert.equal(await tunnelHolder([other]), other, "the other router holds the tunnel");
        killed = primary;
        survivor = other;
    });

    it("the killed router comes back as a standby: the device keeps the LAN while it rejoins, and the primary role stays where it is", async () => {
        needUp();
        assert.ok(killed, "the failover test ran");
        const back = await routerPodOf(killed);
        const lan = watchLan();
        const started = Date.now();
        back.agent.revive(namespace, back.name);
        const nodeOfKilled = haRouters.find((r) => r.name === killed)!.nodeName;
        assert.ok(await waitUntil(async () => (await routeTable()).find((n) => n.name === nodeOfKilled)?.online === true, 90_000, 1_000), `${nodeOfKilled} did not come back online`);
        await new Promise((resolve) => setTimeout(resolve, 15_000));
        const during = await lan.stop();
        report(`rejoin: ${killed} online again after ${elapsed(Date.now() - started - 15_000)}; over ${elapsed(Date.now() - started)} the device reached the LAN ${during.ok} times, failed ${during.failed}`);
        assert.equal(during.failed, 0, "the device lost the LAN while the router rejoined");
        assert.equal(deploymentOf((await primaryRouter()) ?? ""), survivor, "the recovered router did not take the primary role back");
    });

    it("zombie: the primary's tailscale frozen (SIGSTOP), its control session open but forwarding nothing: headscale's HA probe moves the primary role, and the device reaches the LAN again", async () => {
        needUp();
        const zombie = await routerPodOf(survivor);
        zombie.agent.signal(namespace, zombie.name, "tailscale", "SIGSTOP");
        try {
            const lanMs = await untilDeviceReachesLan(120_000);
            const moved = await waitUntil(async () => deploymentOf((await primaryRouter()) ?? "") === killed, 60_000, 1_000);
            report(`zombie (${survivor}'s tailscale frozen; probe every 10 s, 5 s timeout; the tunnel held by ${await tunnelHolder([killed, survivor])}): the device reached the LAN again after ${elapsed(lanMs)}`);
            assert.ok(moved, `the primary role did not move to ${killed}`);
            const frozen = (await routeTable()).find((n) => deploymentOf(n.name) === survivor)!;
            assert.equal(frozen.online, true, "the zombie kept its control session (online), so only the probe could move the primary role");
        } catch (err) {
            zombie.agent.signal(namespace, zombie.name, "tailscale", "SIGCONT");
            throw err;
        }
    });

    it("the frozen router thawed rejoins without flapping: the device keeps the LAN, and the primary role stays", async () => {
        needUp();
        const zombie = await routerPodOf(survivor);
        const lan = watchLan();
        zombie.agent.signal(namespace, zombie.name, "tailscale", "SIGCONT");
        await new Promise((resolve) => setTimeout(resolve, 25_000));
        const during = await lan.stop();
        report(`thawed: over 25 s the device reached the LAN ${during.ok} times, failed ${during.failed}`);
        assert.equal(during.failed, 0, "the device lost the LAN while the thawed router rejoined");
        assert.equal(deploymentOf((await primaryRouter()) ?? ""), killed, "the thawed router did not take the primary role back");
    });

    it("routerReplicas back to 1: the second router's node is deleted from headscale and its state Secret goes; the device keeps the LAN throughout", async () => {
        needUp();
        const holderBefore = await tunnelHolder(routerDeployments);
        await setConfig("routerReplicas", "1");
        const lan = watchLan();
        const started = Date.now();
        const r = await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        await untilDeviceReachesLan(60_000);
        const during = await lan.stop();
        const changed = changedResources(r.stdout);
        report(`routerReplicas 1: pulumi up ${elapsed(Date.now() - started)} (the tunnel was held by ${holderBefore}); the device reached the LAN ${during.ok} times, failed ${during.failed}, longest gap ${elapsed(during.longestGapMs)}; changed:\n    ${changed.join("\n    ")}`);
        assert.match(r.stdout, /deleted the node 'home-router-1' \(id \d+\) from headscale/);
        assert.deepEqual((await routeTable()).map((n) => n.name).filter((n) => n.startsWith("home-router")), ["home-router"], "no stale node left");
        const secret = await exec(world.home, "kubectl", ["--kubeconfig", cluster.kubeconfig, "--context", cluster.context, `--namespace=${namespace}`, "get", "secret", "subnet-router-1-state"], { env: kubectlEnv });
        assert.notEqual(secret.status, 0, "the second router's state Secret is gone");
        assert.equal(during.failed, 0, "the device lost the LAN during the scale-down");
        await mustPulumi(project, ["preview", "--stack", stack, "--expect-no-changes"], { timeoutMs: 300_000 });
        await node2!.stop();
        await kubectl("delete", "node", node2Name);
        node2 = undefined;
    });

    it("pulumi stack export holds no private key, preauth key or TLS key in plain text", async () => {
        needUp();
        const exported = (await mustPulumi(project, ["stack", "export", "--stack", stack])).stdout;
        const secrets = JSON.parse((await kubectl(`--namespace=${namespace}`, "get", "secret", "subnet-router-credentials", "--output=json")).stdout).data;
        const plain = (b64: string) => Buffer.from(b64, "base64").toString("utf8").trim();
        const forbidden: Record<string, string> = {
            "the VPS login key": image.privateKey.trim(),
            "the TLS key": tls.privateKey.trim(),
            "the tunnel key": plain(secrets["tunnel-key"]),
            "the router preauth key": plain(secrets.TS_AUTHKEY),
            "the phone's preauth key": outputs.userKeys.phone.key,
            "the backups' age identity": outputs.backupIdentity,
        };
        for (const [what, value] of Object.entries(forbidden)) {
            assert.ok(value.length > 20, `${what} is known to the test`);
            // Whole, and its longest line (a PEM body line would do).
            const longest = value.split("\n").sort((a, b) => b.length - a.length)[0];
            assert.ok(!exported.includes(longest), `${what} is in the state in plain text`);
        }
        assert.doesNotMatch(exported, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    });

    it("pulumi destroy keeps the data; a later pulumi up resumes with the same nodes, and the device keeps its node ID", async () => {
        needUp();
        const phoneId = async () => (JSON.parse((await headscaleCli("nodes", "list", "--output", "json")).stdout) as any[]).find((n) => n.name === "phone")?.id;
        const idBefore = await phoneId();
        assert.ok(idBefore, "the device is a node");
        // As the README says: the identity kept outside the stack, to read these backups later.
        const identity = String(outputs.backupIdentity);
        const recipient = String(outputs.backupRecipient);
        await exec(world.device, "pkill", ["-x", "tailscaled"]);
        let started = Date.now();
        const r = await mustPulumi(project, ["destroy", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        report(`pulumi destroy (keepDataOnDestroy: true): ${elapsed(Date.now() - started)}`);
        assert.match(r.stdout, /Resources:\n\s+- \d+ deleted/, r.stdout.slice(-3000));
        // (tailscale's state Secret stays too; here tailscale keeps its state in a directory.)
        assert.equal((await kubectl("get", "namespace", namespace, "--output=name")).stdout.trim(), `namespace/${namespace}`);
        assert.equal((await kubectl(`--namespace=${namespace}`, "get", "pvc", "data-headscale-0", "--output=jsonpath={.status.phase}")).stdout, "Bound");
        const gone = await kubectl(`--namespace=${namespace}`, "get", "statefulsets,deployments,cronjobs,configmaps,services", "--selector=app.kubernetes.io/part-of=overlay", "--output=name");
        assert.equal(gone.stdout.trim(), "", gone.stdout);
        const backups = await vm.ssh(`ls ${backupChroot}/backups; ! id ${backupStoreUser} >/dev/null 2>&1 || echo "still there: the user"`);
        assert.match(backups.stdout, /headscale-\d{8}T\d{6}Z\.tar\.age/, "the backups stay on the VPS");
        assert.doesNotMatch(backups.stdout, /still there/);

        await mustPulumi(project, ["config", "set", "--stack", stack, "--secret", "backupIdentity"], { input: identity });
        started = Date.now();
        await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 900_000 });
        report(`pulumi up after the destroy: ${elapsed(Date.now() - started)}`);
        outputs = await readOutputs();
        assert.equal(outputs.backupRecipient, recipient, "the backups are encrypted to the saved identity again");
        const daemon = world.device.start(requireTool("tailscaled"), [`--statedir=${path.dirname(device.socket)}`, `--socket=${device.socket}`],
            { SSL_CERT_FILE: path.join(ca, "ca.pem"), TS_NO_LOGS_NO_SUPPORT: "true" });
        device = { socket: device.socket, log: captureOutput(daemon) };
        const ms = await untilDeviceReachesLan(180_000);
        report(`the device, restarted with its state, reached the LAN after ${elapsed(ms)}`);
        assert.equal(await phoneId(), idBefore, "the device's node ID is the same");
    });

    it("with keepDataOnDestroy false, pulumi destroy leaves nothing of ours on the VPS or in the cluster, and expires the keys", async () => {
        needUp();
        const keyIds = [String(outputs.routerKeyId)];
        await exec(world.device, "pkill", ["-x", "tailscaled"]);
        await setConfig("keepDataOnDestroy", "false");
        await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        // headscale's volume outlives the namespace here (the test's provisioner retains
        // volumes): its database tells afterwards whether the keys were expired.
        const data = await dataDir();
        // What the steps installed: after destroy, no file may still have that content.
        const installed = (await remoteCommands()).flatMap((step) => Object.entries(stepFiles(step.inputs.stdin ?? "")));
        assert.ok(installed.length >= stepPaths.length, installed.map(([file]) => file).join(" "));
        const started = Date.now();
        const r = await mustPulumi(project, ["destroy", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        report(`pulumi destroy (keepDataOnDestroy: false): ${elapsed(Date.now() - started)}`);
        assert.match(r.stdout, /Resources:\n\s+- \d+ deleted/, r.stdout.slice(-3000));
        const check = await vm.ssh([
            ...installed.map(([file, content]) => `if [ -f ${shellQuote(file)} ] && [ "$(sha256sum < ${shellQuote(file)} | cut -d' ' -f1)" = ${sha256(content)} ]; then echo "still there: "${shellQuote(file)}; fi`),
            `[ ! -e /etc/nginx/sites-enabled/overlay-headscale ] || echo "still there: the nginx site link"`,
            `grep -Eq '^[[:space:]]*worker_connections 768;' /etc/nginx/nginx.conf || echo "not the distribution's: worker_connections in nginx.conf"`,
            `! id ${tunnelUser} >/dev/null 2>&1 || echo "still there: the user ${tunnelUser}"`,
            `! id ${backupStoreUser} >/dev/null 2>&1 || echo "still there: the user ${backupStoreUser}"`,
            `[ ! -e ${backupChroot} ] || echo "still there: ${backupChroot}"`,
            `! nft list table inet overlay_firewall >/dev/null 2>&1 || echo "still there: the firewall table"`,
            `! systemctl is-active --quiet coturn || echo "still running: coturn"`,
        ].join("\n"));
        assert.equal(check.stdout.trim(), "", check.stdout);
        const left = await exec(world.home, "kubectl", ["--kubeconfig", cluster.kubeconfig, "get", "namespace", namespace, "--ignore-not-found", "--output=name"], { env: kubectlEnv });
        assert.equal(left.stdout.trim(), "", "the namespace is gone");
        const labelled = await kubectl("get", "all,secrets,configmaps,roles,rolebindings,networkpolicies,pvc,namespaces,clusterroles,clusterrolebindings,cronjobs,jobs", "--all-namespaces", "--selector=app.kubernetes.io/part-of=overlay", "--output=name");
        assert.equal(labelled.stdout.trim(), "", labelled.stdout);
        // The keys, in headscale's own database.
        const db = new DatabaseSync(path.join(data, "db.sqlite"), { readOnly: true });
        const expirations = db.prepare("SELECT id, expiration FROM pre_auth_keys").all() as { id: number; expiration: string }[];
        db.close();
        for (const id of keyIds) {
            const key = expirations.find((k) => String(k.id) === id);
            assert.ok(key && Date.parse(key.expiration) <= Date.now(), `key ${id} is expired: ${JSON.stringify(key)}`);
        }
    });
});

function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}
