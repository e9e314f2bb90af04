// The stack built, as a user builds it, and checked: a fresh preview; a failed up (wrong host
// key, unreachable cluster) that changes nothing; the VPS half alone with --target; a tunnel
// image the node does not have; then the rest. The device joins and reaches the LAN, and
// nothing else; the containers run as their specs say; the NetworkPolicy is enforced; the VPS
// answers only on its ports and the tunnel user can do nothing but its forward; a second up,
// a refresh and a preview change nothing.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { it } from "node:test";
import { parse } from "shell-quote";
import { parseNodeRoutes } from "../../../components/keys/headscaleOutput";
import { tunnelUser } from "../../../components/router/tunnel";
import { tunnelSessionPath } from "../../../components/vps/sshd";
import { placeholderKeypair } from "../../../plan/placeholderKeys";
import { waitUntil } from "../../helpers/netns";
import { repoRoot } from "../../helpers/stack";
import { requireTool } from "../../helpers/tools";
import { allowedPorts, closedPorts, E2e, lanRoute, namespace, stack } from "../context";
import { exec } from "../exec";
import {
    argv, containerLog, containerProcesses, headscaleAddress, headscaleCli, kubectl, pod, routerPod, tryKubectl,
} from "../lib/cluster";
import { deviceEnv, deviceReaches, probe, startDevice, tailscale, untilDeviceReachesLan } from "../lib/device";
import { seconds } from "../lib/figures";
import { changedResources, configure, isSelfReference, readOutputs, setConfig, stackConfig, vpsHalf } from "../lib/stack";
import { vpsState } from "../lib/vps";
import { vpsAddress } from "../network";
import { mustPulumi, pulumiProject } from "../pulumiCli";

/** An image no node has, as a stack kept from before this release would name it. */
const missingImage = "docker.io/jnovack/autossh:2.0.1";

export function buildPhase(e2e: E2e): void {
    it("pulumi preview of the fresh stack lists every resource as a create", async () => {
        await mustPulumi(e2e.project, ["stack", "init", stack]);
        await configure(e2e, stack, stackConfig(e2e), { vpsSshPrivateKey: e2e.image.privateKey, tlsPrivateKey: e2e.tls.privateKey });
        const started = Date.now();
        const r = await mustPulumi(e2e.project, ["preview", "--stack", stack, "--json"]);
        e2e.figures.report("pulumi preview (fresh stack)", (Date.now() - started) / 1000);
        const all = JSON.parse(r.stdout).steps as { op: string; urn: string }[];
        // The upgrade guard reads the stack's own outputs: a read, not a resource of ours.
        assert.deepEqual(all.filter((x) => isSelfReference(x.urn)).map((x) => x.op), ["read"]);
        const steps = all.filter((x) => !isSelfReference(x.urn));
        e2e.planned = steps.map((x) => x.urn);
        assert.deepEqual([...new Set(steps.map((s) => s.op))], ["create"], steps.filter((s) => s.op !== "create").map((s) => `${s.op} ${s.urn}`).join("\n"));
        e2e.figures.line(`${steps.length} resources, every one a create`);
    });

    it("bad input: a wrong host key fails the VPS steps with a host key mismatch and changes nothing there; an unreachable cluster is named by its kubeconfig and context", async () => {
        const before = await vpsState(e2e);
        const wrongHostKey = placeholderKeypair("e2e: not the VPS's host key").publicKeyOpenssh.trim();
        // A kubeconfig whose server nothing answers (the API server's port + 1).
        const unreachable = path.join(e2e.run, "unreachable-kubeconfig.yaml");
        fs.writeFileSync(unreachable, fs.readFileSync(e2e.cluster.kubeconfig, "utf8").replace(":6443", ":6444"), { mode: 0o600 });
        await setConfig(e2e, "vpsHostKey", wrongHostKey);
        await setConfig(e2e, "kubeconfig", unreachable);
        // Without --continue-on-error the engine stops launching steps at the first failure, and which of the
        // two fails first is a race (the cluster check can fail before a VPS step has started).
        const r = await e2e.project.run(["up", "--stack", stack, "--yes", "--continue-on-error"], { timeoutMs: 300_000 });
        const text = r.stdout + r.stderr;
        assert.notEqual(r.status, 0, text);
        assert.match(text, /vps-tunnel-endpoint[\s\S]*(host key mismatch|knownhosts: key mismatch|key is unknown|unable to authenticate|host key)/i, text.slice(-4000));
        assert.match(text, new RegExp(`cannot reach the home cluster \\(kubeconfig ${unreachable.replace(/[.]/g, "\\.")}, context ${e2e.cluster.context}\\)`), text.slice(-4000));
        console.log(`the failed up said:\n${text.split("\n").filter((l) => /error|mismatch|cannot reach/i.test(l)).slice(0, 12).join("\n")}`);
        assert.deepEqual(await vpsState(e2e), before, "the VPS is as it was");
    });

    it("pulumi up --target of the VPS half alone, with the cluster still unreachable, builds that half", async () => {
        await setConfig(e2e, "vpsHostKey", e2e.image.hostKey);
        const urns = vpsHalf(e2e.planned);
        assert.equal(urns.length, 17, urns.join("\n"));
        const started = Date.now();
        const r = await e2e.project.run(["up", "--stack", stack, "--yes", ...urns.flatMap((u) => ["--target", u])], { timeoutMs: 900_000 });
        assert.equal(r.status, 0, `${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`);
        e2e.figures.report("pulumi up --target (the VPS half, 17 resources, the cluster unreachable)", (Date.now() - started) / 1000);
        for (const line of r.stdout.split("\n").filter((l) => /command:remote:Command .* created/.test(l))) e2e.figures.line(line.trim());
        const user = await e2e.vm.ssh(`id -u ${tunnelUser}`, { timeoutMs: 60_000 });
        assert.equal(user.status, 0, `the tunnel user exists: ${user.stderr}\n--- the VM's console:\n${e2e.vm.serialLog().slice(-3000)}`);
    });

    it("bad input: a tunnelImage the node does not have fails pulumi up with the image's name and the kubelet's ErrImagePull or ImagePullBackOff", async () => {
        await setConfig(e2e, "kubeconfig", e2e.cluster.kubeconfig);
        await setConfig(e2e, "tunnelImage", missingImage);
        const started = Date.now();
        const r = await e2e.project.run(["up", "--stack", stack, "--yes"], { timeoutMs: 900_000 });
        const took = (Date.now() - started) / 1000;
        const text = r.stdout + r.stderr;
        assert.notEqual(r.status, 0, "pulumi up passed with an image the node does not have");
        // The update's error, in its diagnostics: the router's Deployment failed, naming the image and why.
        const diagnostics = text.slice(text.indexOf("Diagnostics:"));
        const line = diagnostics.split("\n").find((l) => l.includes(missingImage) && /ErrImagePull|ImagePullBackOff/.test(l));
        assert.ok(line, `the diagnostics name no ${missingImage} with ErrImagePull or ImagePullBackOff:\n${text.slice(-5000)}`);
        e2e.figures.report("pulumi up with a tunnelImage the node does not have: failed after", took, `it said: ${line.trim()}`);
    });

    it("pulumi up with the right image builds everything else, from where the earlier ones stopped", async () => {
        await mustPulumi(e2e.project, ["config", "rm", "--stack", stack, "tunnelImage"]);
        const started = Date.now();
        const r = await e2e.project.run(["up", "--stack", stack, "--yes"], { timeoutMs: 900_000 });
        if (r.status !== 0) {
            const state = await e2e.vm.ssh("systemctl --no-pager --lines=20 status nginx coturn ssh; ss -tulpn; nft list ruleset", { timeoutMs: 30_000 });
            const cluster = await tryKubectl(e2e, ["get", "pods,pvc,pv,events", "-A"]);
            throw new Error(`pulumi up exited ${r.status}:\n${r.stdout.slice(-8000)}\n${r.stderr.slice(-3000)}\n--- the cluster:\n${cluster.stdout}\n--- the node:\n${e2e.home.logs()}\n--- the VPS:\n${state.stdout}${state.stderr}`);
        }
        e2e.figures.report("pulumi up (everything else, the right tunnel image)", (Date.now() - started) / 1000);
        e2e.outputs = await readOutputs(e2e);
        assert.equal(e2e.outputs.vpsHostKey, e2e.image.hostKey, "the tunnel step reports the VM's own host key");
        assert.equal(e2e.outputs.loginServer, "https://headscale.example.com");
        // The router registered with the minted key, and the approval step left exactly the LAN.
        const nodes = parseNodeRoutes((await headscaleCli(e2e, "nodes", "list-routes", "--output", "json")).stdout);
        const router = nodes.find((n) => n.name === "home-router");
        assert.deepEqual(router?.approved, [lanRoute], JSON.stringify(nodes));
        // The manifest's env reached tailscaled: it uploads no logs.
        assert.match(await containerLog(e2e, (await routerPod(e2e)).metadata.name, "tailscale"), /envknob: TS_NO_LOGS_NO_SUPPORT="true"/);
        e2e.built = true;
    });

    it("the roaming device joins with the program's user key, through nginx and the tunnel", async () => {
        e2e.needUp();
        e2e.device = await startDevice(e2e, path.join(e2e.run, "device"));
        const line = parse(e2e.outputs.userKeys.phone.tailscaleUp).map(String);
        assert.deepEqual(line.slice(0, 2), ["tailscale", "up"]);
        assert.ok(line.includes("--accept-routes"), "the line accepts the LAN routes");
        // The test machine's DNS stays untouched; the rest is the program's line as given.
        const r = await exec(e2e.world.device, requireTool("tailscale"), [`--socket=${e2e.device.socket}`, ...line.slice(1), "--accept-dns=false", "--hostname=phone", "--timeout=90s"],
            { env: deviceEnv(e2e), timeoutMs: 120_000 });
        assert.equal(r.status, 0, `tailscale up: ${r.stderr}\n${e2e.device.log().slice(-3000)}`);
    });

    it("the device reaches the LAN service through the subnet route, relayed by the VPS", async () => {
        e2e.needUp();
        const ms = await untilDeviceReachesLan(e2e, 120_000);
        e2e.figures.report("device → LAN service: first answer", ms / 1000);
        const status = JSON.parse((await tailscale(e2e, "status", "--json")).stdout);
        const router = Object.values(status.Peer as Record<string, any>).find((p) => p.HostName === "home-router");
        assert.ok(router, "the router is a peer");
        assert.deepEqual(router.PrimaryRoutes, [lanRoute]);
        // No direct path exists between home and the device: DERP through nginx carries it.
        const ping = await tailscale(e2e, "ping", "-c", "1", "--until-direct=false", router.TailscaleIPs[0]);
        assert.match(ping.stdout, /via DERP/, ping.stdout + ping.stderr);
    });

    it("the device cannot reach the cluster's pod range: headscale's pod answers the node, not the device", async () => {
        e2e.needUp();
        const url = `http://${await headscaleAddress(e2e)}:8080/health`;
        assert.match(url, /^http:\/\/10\.42\./);
        assert.equal(await deviceReaches(e2e, url, 5), undefined);
        const status = JSON.parse((await tailscale(e2e, "status", "--json")).stdout);
        const routes = Object.values(status.Peer as Record<string, any>).flatMap((p) => p.AllowedIPs ?? []);
        assert.ok(!routes.some((r: string) => r.startsWith("10.42.") || r.startsWith("10.43.")), routes.join(" "));
        // It is there: the node itself reaches it (the NetworkPolicy lets the kubelet's probes in).
        const r = await exec(e2e.world.home, "curl", ["-sf", "--max-time", "5", url]);
        assert.equal(r.status, 0, r.stderr);
    });

    it("the containers run as their specs say, seen from the host: headscale as 65532 and the tunnel as 65534, read-only roots, tailscale with NET_ADMIN, and a service-account token in tailscale's alone; outside the namespace, Pod Security refuses NET_ADMIN", async () => {
        e2e.needUp();
        const router = (await routerPod(e2e)).metadata.name;
        const containers = [
            { pod: "headscale-0", name: "headscale", uid: 65532, readOnly: true, token: false },
            { pod: router, name: "tailscale", uid: 0, readOnly: false, token: true },
            { pod: router, name: "tunnel", uid: 65534, readOnly: true, token: false },
        ];
        const seen: string[] = [];
        for (const c of containers) {
            const { pids } = await containerProcesses(e2e, c.pod, c.name);
            assert.ok(pids.length > 0, `no process of ${c.pod}/${c.name}`);
            const status = fs.readFileSync(`/proc/${pids[0]}/status`, "utf8");
            const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
            const capabilities = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)/m.exec(status)![1]}`);
            const mounts = fs.readFileSync(`/proc/${pids[0]}/mountinfo`, "utf8").split("\n").map((l) => l.split(" "));
            const root = mounts.find((m) => m[4] === "/");
            const rootReadOnly = root![5].split(",").includes("ro");
            // /var/run is a link to /run in a Debian root: the mount is where the link leads.
            const token = mounts.some((m) => /^(\/var)?\/run\/secrets\/kubernetes\.io\/serviceaccount$/.test(m[4]));
            seen.push(`${c.pod}/${c.name}: ${argv(pids[0]).slice(0, 2).join(" ")} uid ${uid}, root ${rootReadOnly ? "read-only" : "read-write"}, NET_ADMIN ${(capabilities >> 12n) & 1n ? "yes" : "no"}, token ${token ? "mounted" : "none"}`);
            assert.equal(uid, c.uid, `${c.name}'s uid`);
            assert.equal(rootReadOnly, c.readOnly, `${c.name}'s root filesystem`);
            assert.equal(token, c.token, `${c.name}'s service-account token`);
            if (c.name === "tailscale") assert.equal((capabilities >> 12n) & 1n, 1n, "tailscale has NET_ADMIN");
        }
        // headscale's image runs as root unless told: the pod's securityContext is what makes it 65532.
        for (const line of seen) e2e.figures.line(line);
        // The cluster's default Pod Security level is baseline: only the namespace's own label
        // admits the router. A pod with its capabilities elsewhere is refused.
        const elsewhere = await tryKubectl(e2e, ["--namespace=default", "create", "-f", "-"], JSON.stringify({
            apiVersion: "v1", kind: "Pod", metadata: { name: "e2e-net-admin" },
            spec: { containers: [{ name: "c", image: "registry.k8s.io/pause:3.10.1", securityContext: { capabilities: { add: ["NET_ADMIN", "NET_RAW"] } } }] },
        }));
        assert.notEqual(elsewhere.status, 0, "a pod with NET_ADMIN was admitted in a namespace without the label");
        assert.match(elsewhere.stderr, /violates PodSecurity "baseline:latest": non-default capabilities \(container "c" must not include "NET_ADMIN", "NET_RAW"/, elsewhere.stderr);
    });

    it("the NetworkPolicy is enforced: a pod without the router's labels cannot reach headscale:8080, a router pod can, and the kubelet's probes still pass", async () => {
        e2e.needUp();
        const image = String((await routerPod(e2e)).spec.containers.find((c: any) => c.name === "tunnel").image);
        const url = `http://headscale.${namespace}.svc:8080/health`;
        await kubectl(e2e, `--namespace=${namespace}`, "run", "e2e-netpol-probe", `--image=${image}`, "--restart=Never", "--labels=app.kubernetes.io/name=e2e-netpol-probe",
            "--command", "--", "curl", "-sS", "--max-time", "5", url);
        const ended = await waitUntil(async () => /Succeeded|Failed/.test((await kubectl(e2e, `--namespace=${namespace}`, "get", "pod", "e2e-netpol-probe", "--output=jsonpath={.status.phase}")).stdout), 90_000, 1000);
        assert.ok(ended, "the probe pod did not finish");
        const phase = (await kubectl(e2e, `--namespace=${namespace}`, "get", "pod", "e2e-netpol-probe", "--output=jsonpath={.status.phase}")).stdout;
        const refused = (await containerLog(e2e, "e2e-netpol-probe", "e2e-netpol-probe")).trim();
        await kubectl(e2e, `--namespace=${namespace}`, "delete", "pod", "e2e-netpol-probe", "--wait=false");
        assert.equal(phase, "Failed", `a pod without the router's labels reached headscale: ${refused}`);
        assert.match(refused, /Connection refused|timed out|Failed to connect/, refused);
        const router = (await routerPod(e2e)).metadata.name;
        const allowed = await kubectl(e2e, `--namespace=${namespace}`, "exec", router, "-c", "tunnel", "--", "curl", "-sS", "--max-time", "5", url);
        assert.match(allowed.stdout, /pass/, allowed.stdout);
        const headscale = await pod(e2e, "headscale-0");
        assert.equal(headscale.status.conditions.find((c: any) => c.type === "Ready").status, "True", "headscale's readiness probe passes");
        e2e.figures.line(`NetworkPolicy: the unlabelled pod got "${refused}"; the router's tunnel container got ${allowed.stdout.trim()}`);
    });

    it("tailscale netcheck gets its STUN answer from the VM's coturn", async () => {
        e2e.needUp();
        const r = await tailscale(e2e, "netcheck", "--format=json");
        assert.equal(r.status, 0, r.stderr);
        const netcheck = JSON.parse(r.stdout);
        assert.equal(netcheck.UDP, true, r.stdout);
        // Only a server inside the VM sees the device as QEMU's 10.0.2.2.
        assert.match(String(netcheck.GlobalV4), /^10\.0\.2\.2:\d+$/, r.stdout);
        assert.ok(netcheck.RegionLatency?.["999"] > 0, `region 999 latency: ${r.stdout}`);
        // ...and there, only coturn listens on udp/3478.
        const listeners = await e2e.vm.ssh("ss -Hulnp 'sport = :3478'");
        assert.match(listeners.stdout, /10\.0\.2\.15:3478.*"turnserver"/, listeners.stdout);
        assert.doesNotMatch(listeners.stdout.replace(/.*"turnserver".*\n?/g, ""), /\S/, "nothing else on udp/3478");
    });

    it("the embedded DERP (region 999) is reachable through nginx and the tunnel", async () => {
        e2e.needUp();
        const r = await tailscale(e2e, "debug", "derp", "999");
        assert.equal(r.status, 0, r.stderr);
        const derp = JSON.parse(r.stdout);
        // This VPS has no IPv6 (the DERP map says "none"), which the checker reports anyway.
        assert.deepEqual((derp.Errors ?? []).filter((e: string) => !/ over IPv6: /.test(e)), [], r.stdout);
        assert.ok((derp.Info as string[]).some((l) => /Successfully established a DERP connection/.test(l)), r.stdout);
    });

    it("only the allow-listed ports of the VM answer", async () => {
        e2e.needUp();
        const result = await probe(e2e, [...allowedPorts, ...closedPorts]);
        assert.deepEqual(result, Object.fromEntries([...allowedPorts.map((p) => [p, true]), ...closedPorts.map((p) => [p, false])]));
    });

    it("the tunnel user cannot get a shell, nor any forward but its own", async () => {
        e2e.needUp();
        const secret = JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "secret", "subnet-router-credentials", "--output=json")).stdout).data;
        const key = path.join(e2e.run, "tunnel_key");
        fs.writeFileSync(key, Buffer.from(secret["tunnel-key"], "base64"), { mode: 0o600 });
        const known = path.join(e2e.run, "tunnel_known_hosts");
        fs.writeFileSync(known, Buffer.from(secret.known_hosts, "base64"));
        const ssh = (...args: string[]) => exec(e2e.world.home, "ssh", ["-i", key, "-o", `UserKnownHostsFile=${known}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", ...args], { timeoutMs: 30_000 });
        const passwd = await e2e.vm.ssh(`getent passwd ${tunnelUser}`);
        assert.match(passwd.stdout.trim(), new RegExp(`:${tunnelSessionPath}$`), "the tunnel user's login shell is tunnel-session");
        const command = await ssh(`${tunnelUser}@${vpsAddress}`, "id");
        assert.notEqual(command.status, 0);
        assert.doesNotMatch(command.stdout, /uid=/);
        // The session ran tunnel-session, not the command: it ended the connection at the end of its input, and said so.
        const said = await e2e.vm.ssh("journalctl --no-pager -o cat -t overlay-tunnel --since '-2min'");
        assert.match(said.stdout, /closed its session: ending its connection, which frees the tunnel port/, said.stdout + said.stderr);
        const shell = await ssh("-tt", `${tunnelUser}@${vpsAddress}`);
        assert.notEqual(shell.status, 0);
        assert.doesNotMatch(shell.stdout, /uid=|\$ |# /);
        const otherForward = await ssh("-N", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:9999:127.0.0.1:22", `${tunnelUser}@${vpsAddress}`);
        assert.notEqual(otherForward.status, 0, "a second reverse forward is refused");
        // A local forward's channel (-W opens one at once): sshd refuses it.
        const local = await ssh("-W", "127.0.0.1:22", `${tunnelUser}@${vpsAddress}`);
        assert.notEqual(local.status, 0, "a local forward is refused");
        assert.match(local.stderr, /administratively prohibited|open failed/, local.stderr);
    });

    it("a second pulumi up changes nothing, preview --expect-no-changes agrees, and a targeted no-op up of the VPS half is as quick", async () => {
        e2e.needUp();
        const started = Date.now();
        const r = await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        const noop = Date.now() - started;
        assert.match(r.stdout, /Resources:\n\s+\d+ unchanged\n/, r.stdout.slice(-3000));
        const previewStarted = Date.now();
        await mustPulumi(e2e.project, ["preview", "--stack", stack, "--expect-no-changes"]);
        const preview = Date.now() - previewStarted;

        // The same engine, a one-resource program: what a no-op `pulumi up` costs at the least.
        const one = path.join(e2e.run, "one-resource");
        fs.mkdirSync(one);
        fs.writeFileSync(path.join(one, "index.ts"), 'import * as random from "@pulumi/random";\nexport const id = new random.RandomId("one", { byteLength: 4 }).hex;\n');
        fs.writeFileSync(path.join(one, "package.json"), '{ "name": "one-resource", "main": "index.ts" }\n');
        fs.copyFileSync(path.join(repoRoot, "tsconfig.json"), path.join(one, "tsconfig.json"));
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(one, "node_modules"));
        const small = pulumiProject({ ns: e2e.world.home, dir: one, pathPrefix: [], pulumiYaml: "name: one-resource\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n" });
        await mustPulumi(small, ["stack", "init", "one"]);
        await mustPulumi(small, ["up", "--yes"]);
        const oneStarted = Date.now();
        const oneNoop = await mustPulumi(small, ["up", "--yes"]);
        const oneMs = Date.now() - oneStarted;
        assert.match(oneNoop.stdout, /2 unchanged/);
        e2e.figures.report("no-op pulumi up", noop / 1000, `one-resource program ${seconds(oneMs / 1000)}, ratio ${(noop / oneMs).toFixed(1)}x; preview --expect-no-changes ${seconds(preview / 1000)}`);

        // Users apply one half with --target: the VPS steps and what they need.
        const urns = vpsHalf(e2e.planned);
        const targetStarted = Date.now();
        const targeted = await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes", ...urns.flatMap((u) => ["--target", u])]);
        e2e.figures.report("targeted no-op pulumi up of the VPS half", (Date.now() - targetStarted) / 1000);
        assert.doesNotMatch(targeted.stdout, / (created|updated|replaced|deleted)\b/);
        assert.deepEqual(changedResources(targeted.stdout), []);
    });

    it("pulumi refresh finds the state true and no drift on the VPS, and preview --expect-no-changes still agrees", async () => {
        e2e.needUp();
        const started = Date.now();
        const r = await mustPulumi(e2e.project, ["refresh", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        e2e.figures.report("pulumi refresh", (Date.now() - started) / 1000);
        assert.doesNotMatch(r.stdout, /^\s*~ .* updated/m, r.stdout.slice(-3000));
        assert.doesNotMatch(r.stdout, /has drifted/, r.stdout.slice(-3000));
        const preview = await e2e.project.run(["preview", "--stack", stack, "--expect-no-changes", "--diff"]);
        assert.equal(preview.status, 0, `a diff after refresh:\n${preview.stdout.slice(-6000)}`);
    });
}
