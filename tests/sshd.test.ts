// The tunnel endpoint with the real OpenSSH server: the rendered drop-in and authorized_keys
// at their real paths, in a network namespace of the test's own. The tunnel works; nothing
// else does. Then the router's own tunnel command (hold-tunnel.sh and ssh) brings a killed
// tunnel back, says in its log why a connection ended, and two routers share the port: one
// holds it, the other takes it when it dies.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { tunnelTiming, tunnelUser } from "../components/router/tunnel";
import { vpsOpenFiles } from "../components/vps/limits";
import { tunnelSilenceSeconds } from "../components/vps/sshd";
import { captureOutput, createNetns, dropAddressTable, Netns, processTree, signalTree, stopChild, waitUntil } from "./helpers/netns";
import { RouterOptions, startTunnelSshd, TunnelSshd } from "./helpers/sshd";
import { requireTool } from "./helpers/tools";

const tunnelPort = 8080;
const backendPort = 9000;
let ns: Netns;
let sshdLog: () => string;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-sshd-"));
let clientKey: string;
let knownHosts: string;
let tunnelSshd: TunnelSshd;

const sshBase = () => [
    "-i", clientKey, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-p", "22",
];
const target = `${tunnelUser}@127.0.0.1`;

function get(port: number): string {
    const r = ns.run("curl", ["-s", "--max-time", "3", `http://127.0.0.1:${port}/`], { timeoutMs: 10_000 });
    return r.status === 0 ? r.stdout : "";
}

/** A backend in the namespace on 127.0.0.1:port; `handler` is the body of an http request handler (q, s). */
function backend(port: number, handler: string) {
    const child = ns.start(process.execPath, ["-e", `require("http").createServer((q, s) => { ${handler} }).listen(${port}, "127.0.0.1")`]);
    captureOutput(child);
    return child;
}

describe("the tunnel endpoint under the real sshd", () => {
    before(async () => {
        for (const tool of ["ssh", "curl"]) requireTool(tool);
        ns = createNetns("ovl-sshd");
        tunnelSshd = await startTunnelSshd(ns, scratch, { tunnelPort });
        ({ clientKey, knownHosts, log: sshdLog } = tunnelSshd);
        backend(backendPort, 's.end("backend-ok");');
        assert.ok(await waitUntil(() => get(backendPort) === "backend-ok", 10_000), "the test backend did not start");
    });

    after(() => {
        ns?.destroy();
        fs.rmSync(scratch, { recursive: true, force: true });
    });

    it("applies the Match block to the tunnel user only", () => {
        const effective = (user: string) => ns.run("/usr/sbin/sshd", ["-T", "-f", "/etc/ssh/sshd_config", "-C", `user=${user},host=x,addr=127.0.0.1`]).stdout;
        const tunnel = effective(tunnelUser);
        for (const line of ["allowtcpforwarding remote", `permitlisten 127.0.0.1:${tunnelPort}`, "permitopen none", "gatewayports no", "x11forwarding no",
            "allowagentforwarding no", "allowstreamlocalforwarding no", "permittty no", `forcecommand ${path.join(scratch, "tunnel-session")}`,
            "setenv OVERLAY_TUNNEL_SILENCE_SECONDS=15", "clientaliveinterval 5", "clientalivecountmax 3"]) {
            assert.match(tunnel, new RegExp(`^${line}$`, "m"), line);
        }
        assert.match(effective("root"), /^x11forwarding yes$/m, "the Match block leaks to other users");
    });

    it("carries traffic through `ssh -N -R 127.0.0.1:<port>:...`", async () => {
        const ssh = ns.start("ssh", [...sshBase(), "-N", "-o", "ExitOnForwardFailure=yes", "-R", `127.0.0.1:${tunnelPort}:127.0.0.1:${backendPort}`, target]);
        const log = captureOutput(ssh);
        try {
            assert.ok(await waitUntil(() => get(tunnelPort) === "backend-ok", 15_000), `no traffic through the tunnel:\n${log()}\n${sshdLog().slice(-2000)}`);
            // sshd runs with systemd's 1024 open files; the session, one open file per relayed
            // client, gets the tunnel user's limit from pam_limits and the step's limits.d file.
            const session = ns.run("pgrep", ["-u", tunnelUser, "-x", "sshd"]).stdout.trim().split("\n")[0];
            assert.match(session, /^\d+$/, "the tunnel's session process");
            assert.match(fs.readFileSync(`/proc/${session}/limits`, "utf8"), new RegExp(`^Max open files\\s+${vpsOpenFiles}\\s+${vpsOpenFiles}\\s`, "m"));
        } finally {
            await stopChild(ssh);
        }
    });

    it("refuses a shell and a command", () => {
        for (const args of [[], ["echo pwned; id"]]) {
            const r = ns.run("ssh", [...sshBase(), target, ...args], { timeoutMs: 15_000 });
            assert.notEqual(r.status, 0);
            assert.doesNotMatch(r.stdout + r.stderr, /pwned|uid=/);
        }
    });

    it("refuses a local forward (-L)", async () => {
        const ssh = ns.start("ssh", [...sshBase(), "-N", "-L", `127.0.0.1:7000:127.0.0.1:${backendPort}`, target]);
        const log = captureOutput(ssh);
        try {
            await waitUntil(() => ns.run("curl", ["-s", "--max-time", "2", "http://127.0.0.1:7000/"]).status !== 7, 10_000);
            assert.notEqual(get(7000), "backend-ok");
            assert.ok(await waitUntil(() => /administratively prohibited|open failed/.test(log()), 10_000), log());
        } finally {
            await stopChild(ssh);
        }
    });

    for (const [what, spec] of [["another port", `127.0.0.1:8081:127.0.0.1:${backendPort}`], ["another address", `0.0.0.0:${tunnelPort}:127.0.0.1:${backendPort}`], ["no address", `${tunnelPort}:127.0.0.1:${backendPort}`]]) {
        it(`refuses a reverse forward on ${what} (-R ${spec})`, () => {
            const r = ns.run("ssh", [...sshBase(), "-N", "-o", "ExitOnForwardFailure=yes", "-R", spec, target], { timeoutMs: 20_000 });
            assert.notEqual(r.status, 0);
            assert.match(r.stderr, /remote port forwarding failed/);
        });
    }

    it("refuses agent forwarding", async () => {
        const agent = spawnSync("ssh-agent", ["-s"], { encoding: "utf8" }).stdout;
        const sock = /SSH_AUTH_SOCK=([^;]+)/.exec(agent)?.[1];
        const pid = /SSH_AGENT_PID=(\d+)/.exec(agent)?.[1];
        assert.ok(sock && pid, agent);
        try {
            const before = sshdLog().length;
            ns.run("ssh", [...sshBase(), "-A", target], { timeoutMs: 15_000, env: { SSH_AUTH_SOCK: sock } });
            assert.ok(await waitUntil(() => /agent forwarding disabled/i.test(sshdLog().slice(before)), 5000), sshdLog().slice(before));
        } finally {
            process.kill(Number(pid));
        }
    });

    /** A router's tunnel command, as its container runs it, forwarding to this backend port. */
    const router = (backend: number, control: string, options?: RouterOptions) => tunnelSshd.startRouter(backend, path.join(scratch, control), options);

    /** The ssh that holds a router's connection (the script's own `ssh -O` calls come and go). */
    const connectionSsh = (script: number): string => {
        const tree = processTree(script).map(String);
        return tree.find((pid) => {
            try {
                const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
                return argv[0] === "ssh" && argv.includes("ControlMaster=auto");
            } catch {
                return false;
            }
        }) ?? "";
    };

    it("comes back within the retry interval under the router's tunnel command after its ssh is killed", async () => {
        const a = router(backendPort, "one.ssh");
        try {
            assert.ok(await waitUntil(() => get(tunnelPort) === "backend-ok", 20_000), `the tunnel was not established:\n${a.log()}`);
            // AES-GCM where the CPU has AES instructions, else OpenSSH's default, chacha20-poly1305.
            const aes = /\baes\b/.test(fs.readFileSync("/proc/cpuinfo", "utf8"));
            assert.match(sshdLog(), new RegExp(`client->server cipher: ${aes ? "aes128-gcm@openssh.com" : "chacha20-poly1305@openssh.com"}`));
            const ssh = connectionSsh(a.child.pid!);
            assert.match(ssh, /^\d+$/, `the connection's ssh not found:\n${a.log()}`);
            // Each relayed client is an open file of ssh's: it runs with the hard limit, not 1024.
            const [soft, hard] = /^Max open files\s+(\S+)\s+(\S+)/m.exec(fs.readFileSync(`/proc/${ssh}/limits`, "utf8"))!.slice(1);
            assert.equal(soft, hard, `ssh's open-files limit: soft ${soft}, hard ${hard}`);
            assert.notEqual(soft, "1024");
            const killedAt = Date.now();
            process.kill(Number(ssh), "SIGKILL");
            const newSsh = () => connectionSsh(a.child.pid!);
            assert.ok(await waitUntil(() => /^\d+$/.test(newSsh()) && newSsh() !== ssh, 10_000, 50), `no new ssh:\n${a.log()}`);
            assert.match(a.log(), /overlay: ssh exited with status 137 after \d+s; connecting again in [03]s/);
            const back = await waitUntil(() => get(tunnelPort) === "backend-ok", 30_000, 200);
            const seconds = (Date.now() - killedAt) / 1000;
            console.log(`# the tunnel was back ${seconds.toFixed(1)} s after its ssh was killed (its control socket left behind)`);
            assert.ok(back, `the tunnel was not back within 30 s:\n${a.log()}`);
            assert.ok(seconds <= tunnelTiming.retrySeconds + 3, `back after ${seconds} s`);
        } finally {
            signalTree(Number(a.child.pid), "SIGKILL");
        }
    });

    it("says in its log why the connection ended, in ssh's words and its own, and waits longer after each quick failure", async () => {
        const wrongKnownHosts = path.join(scratch, "wrong_known_hosts");
        spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path.join(scratch, "not-the-host-key")]);
        fs.writeFileSync(wrongKnownHosts, `127.0.0.1 ${fs.readFileSync(path.join(scratch, "not-the-host-key.pub"), "utf8").split(" ").slice(0, 2).join(" ")}\n`);
        const a = router(backendPort, "wrong.ssh", { knownHostsFile: wrongKnownHosts });
        try {
            const exits = () => a.log().match(/overlay: ssh exited with status 255 after \d+s; connecting again in \d+s/g) ?? [];
            assert.ok(await waitUntil(() => exits().length >= 3, 20_000, 200), `three failed connections were not logged:\n${a.log()}`);
            console.log(`# the tunnel's log with a wrong host key:\n#   ${a.log().trim().split("\n").slice(0, 8).join("\n#   ")}`);
            assert.match(a.log(), /Host key verification failed\./, "ssh's own reason");
            assert.match(a.log(), /REMOTE HOST IDENTIFICATION HAS CHANGED|host key for 127\.0\.0\.1 has changed|Host key verification failed/);
            const waits = exits().map((l) => Number(/in (\d+)s$/.exec(l)![1]));
            assert.deepEqual(waits.slice(0, 3), [tunnelTiming.retrySeconds, 2 * tunnelTiming.retrySeconds, 4 * tunnelTiming.retrySeconds]);
            assert.equal(get(tunnelPort), "", "no tunnel to a VPS whose host key is not the pinned one");
        } finally {
            signalTree(Number(a.child.pid), "SIGKILL");
        }
    });

    it("with two routers, one holds the port and the other waits on its open connection; when the holder dies, the other takes the port within the retry interval, with no new login", async () => {
        const timing = tunnelTiming;
        const other = backend(backendPort + 1, 's.end("backend-b");');
        const logins = () => (sshdLog().match(/Accepted publickey for tunnel/g) ?? []).length;
        const a = router(backendPort, "a.ssh");
        let b: ReturnType<typeof router> | undefined;
        try {
            assert.ok(await waitUntil(() => get(tunnelPort) === "backend-ok", 20_000), `router A did not take the port:\n${a.log()}\n${sshdLog().slice(-2000)}`);
            b = router(backendPort + 1, "b.ssh");
            assert.ok(await waitUntil(() => /standby/.test(b!.log()), 20_000), `router B did not report standby:\n${b.log()}`);
            const loginsBefore = logins();
            const refusalLines = () => sshdLog().split("\n").filter((l) => /Address already in use|cannot listen/.test(l));
            const refusalsBefore = refusalLines().length;
            await new Promise((resolve) => setTimeout(resolve, 3 * timing.retrySeconds * 1000));
            assert.equal(get(tunnelPort), "backend-ok", "the holder keeps the port");
            assert.equal(logins(), loginsBefore, "the standby asks over its open connection: no new login");
            const refused = refusalLines().slice(refusalsBefore);
            console.log(`# sshd's lines for the standby's refused requests, ${3 * timing.retrySeconds} s:\n#   ${refused.join("\n#   ")}`);
            const refusals = refused.filter((l) => /cannot listen/.test(l)).length;
            assert.ok(refusals >= 2 && refusals <= 4, `one refused request per ${timing.retrySeconds} s: ${refusals} in ${3 * timing.retrySeconds} s`);
            assert.match(a.log(), /this router holds the tunnel/);

            const killedAt = Date.now();
            signalTree(Number(a.child.pid), "SIGKILL");
            const took = await waitUntil(() => get(tunnelPort) === "backend-b", 4 * timing.retrySeconds * 1000, 100);
            const seconds = (Date.now() - killedAt) / 1000;
            console.log(`# the standby took the port ${seconds.toFixed(1)} s after the holder's processes were killed (retry every ${timing.retrySeconds} s); sshd logged ${refusals} refused requests in ${3 * timing.retrySeconds} s of standby, and no login`);
            assert.ok(took, `the standby did not take the port:\n${b.log()}\n${sshdLog().slice(-2000)}`);
            assert.ok(seconds <= timing.retrySeconds + 2, `took ${seconds} s`);
            assert.ok(await waitUntil(() => /this router holds the tunnel/.test(b!.log()), 5000), `the standby did not say it holds the tunnel:\n${b.log()}`);
            assert.doesNotMatch(a.log() + b.log(), /remote port forwarding failed/, "ssh's own line for each refused request is left out of the log");
        } finally {
            signalTree(Number(a.child.pid), "SIGKILL");
            if (b) signalTree(Number(b.child.pid), "SIGKILL");
            other.kill("SIGKILL");
        }
    });

    it("a holder lost with its connection open (every packet to or from it dropped) while clients keep connecting to the tunnel port: the VPS ends its connection when its heartbeat stops, and the standby takes the port", async () => {
        const other = backend(backendPort + 1, 's.end("backend-b");');
        const lost = "127.0.0.2";
        const a = router(backendPort, "lost-a.ssh", { bindAddress: lost });
        let b: ReturnType<typeof router> | undefined;
        // Clients retrying through nginx, as every device of a tailnet does when headscale stops answering: bounded, and killed below.
        let clients: ReturnType<Netns["start"]> | undefined;
        const cut = dropAddressTable("lost_router", lost, ["input", "output"]);
        try {
            assert.ok(await waitUntil(() => get(tunnelPort) === "backend-ok", 20_000), `router A did not take the port:\n${a.log()}\n${sshdLog().slice(-2000)}`);
            b = router(backendPort + 1, "lost-b.ssh");
            assert.ok(await waitUntil(() => /standby/.test(b!.log()), 20_000), `router B did not report standby:\n${b.log()}`);
            clients = ns.start("sh", ["-c", `for i in $(seq 200); do curl -s --max-time 1 -o /dev/null http://127.0.0.1:${tunnelPort}/; sleep 0.25; done`]);
            const nft = ns.run("nft", ["-f", "-"], { input: cut });
            assert.equal(nft.status, 0, nft.stderr);
            const cutAt = Date.now();
            const silence = tunnelSilenceSeconds;
            const took = await waitUntil(() => get(tunnelPort) === "backend-b", (silence + 3 * tunnelTiming.retrySeconds + 10) * 1000, 250);
            const seconds = (Date.now() - cutAt) / 1000;
            console.log(`# the lost holder's port went to the standby ${seconds.toFixed(1)} s after it was cut off, with a client connecting every 0.25-1.25 s (heartbeat every ${tunnelTiming.keepaliveSeconds} s, ${silence} s of silence allowed)`);
            assert.ok(took, `the standby did not take the port within ${silence + 3 * tunnelTiming.retrySeconds + 10} s:\n${b.log()}\n${sshdLog().slice(-3000)}`);
            assert.ok(seconds >= silence - tunnelTiming.keepaliveSeconds, `the port moved after ${seconds} s, before the heartbeat could have been missed: was the holder cut off?`);
            assert.ok(seconds <= silence + tunnelTiming.retrySeconds + 3, `took ${seconds} s`);
        } finally {
            ns.run("nft", ["delete", "table", "inet", "lost_router"]);
            clients?.kill("SIGKILL");
            signalTree(Number(a.child.pid), "SIGKILL");
            if (b) signalTree(Number(b.child.pid), "SIGKILL");
            other.kill("SIGKILL");
        }
    });

    it("a holder that stops (SIGTERM, as a pod deletion sends) gives the port up first: the standby takes it while the stopping router's open sessions carry on", async () => {
        const streamPort = backendPort + 2;
        const backends = [
            backend(backendPort + 1, 's.end("backend-b");'),
            backend(streamPort, `
                if (q.url !== "/stream") return s.end("backend-a");
                let n = 0;
                const t = setInterval(() => { s.write("tick\\n"); if (++n === 6) { clearInterval(t); s.end(); } }, 500);`),
        ];
        const a = router(streamPort, "c.ssh");
        let b: ReturnType<typeof router> | undefined;
        try {
            assert.ok(await waitUntil(() => get(tunnelPort) === "backend-a", 20_000), `router A did not take the port:\n${a.log()}`);
            b = router(backendPort + 1, "d.ssh");
            assert.ok(await waitUntil(() => /standby/.test(b!.log()), 20_000), `router B did not report standby:\n${b.log()}`);
            // A session through A's connection, 3 s long; A is told to stop half a second into it.
            const session = ns.start("curl", ["-sN", "--max-time", "20", `http://127.0.0.1:${tunnelPort}/stream`]);
            const sessionOutput = captureOutput(session);
            const sessionEnded = new Promise<number | null>((resolve) => session.once("exit", resolve));
            await new Promise((resolve) => setTimeout(resolve, 500));
            const stoppedAt = Date.now();
            a.child.kill("SIGTERM");
            const took = await waitUntil(() => get(tunnelPort) === "backend-b", 10_000, 100);
            const tookSeconds = (Date.now() - stoppedAt) / 1000;
            assert.ok(took, `the standby did not take the port:\n${b.log()}\n${a.log()}`);
            assert.equal(await sessionEnded, 0, "the session through the stopping router ended in error");
            assert.equal(sessionOutput().trim().split("\n").length, 6, `the session through the stopping router was cut: ${sessionOutput()}`);
            const exited = await waitUntil(() => a.child.exitCode !== null || a.child.signalCode !== null, 15_000, 100);
            console.log(`# stopping holder: the standby took the port ${tookSeconds.toFixed(1)} s after SIGTERM; the stopping router's 3 s session ran to its end; it exited after ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s`);
            assert.ok(exited, "the stopping router did not exit");
            assert.match(a.log(), /gave the tunnel port up/);
        } finally {
            signalTree(Number(a.child.pid), "SIGKILL");
            if (b) signalTree(Number(b.child.pid), "SIGKILL");
            for (const server of backends) server.kill("SIGKILL");
        }
    });
});
