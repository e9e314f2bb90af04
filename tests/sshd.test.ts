// The tunnel endpoint with the real OpenSSH server: the rendered drop-in and authorized_keys
// at their real paths, in a network namespace of the test's own. The tunnel works; nothing
// else does. Then real autossh, with the router's own flags, brings a killed tunnel back.
import assert from "node:assert/strict";
import { ChildProcess, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { autosshCommand, autosshEnvironment, knownHostsLine, tunnelUser } from "../components/router/tunnel";
import { authorizedKeysPath, renderAuthorizedKeys, renderSshdDropIn, sshdDropInPath } from "../components/vps/sshd";
import { addSystemUser, captureOutput, createNetns, Netns, waitUntil } from "./helpers/netns";
import { requireTool } from "./helpers/tools";

const tunnelPort = 8080;
const backendPort = 9000;
let ns: Netns;
let sshdLog: () => string;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-sshd-"));
const clientKey = path.join(scratch, "id_ed25519");
const knownHosts = path.join(scratch, "known_hosts");

const sshBase = () => [
    "-i", clientKey, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-p", "22",
];
const target = `${tunnelUser}@127.0.0.1`;

function get(port: number): string {
    const r = ns.run("curl", ["-s", "--max-time", "3", `http://127.0.0.1:${port}/`], { timeoutMs: 10_000 });
    return r.status === 0 ? r.stdout : "";
}

describe("the tunnel endpoint under the real sshd", () => {
    before(async () => {
        for (const tool of ["ssh", "ssh-keygen", "autossh", "curl"]) requireTool(tool);
        assert.ok(fs.existsSync("/usr/sbin/sshd"), "openssh-server is not installed: apt-get install openssh-server");
        ns = createNetns("ovl-sshd");

        // The namespace's /etc/ssh: a main config like Debian's, plus our two files.
        const etcSsh = path.join(ns.etc, "ssh");
        fs.mkdirSync(path.join(etcSsh, "sshd_config.d"), { recursive: true, mode: 0o755 });
        spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(etcSsh, "ssh_host_ed25519_key")]);
        fs.writeFileSync(path.join(etcSsh, "sshd_config"), [
            "Include /etc/ssh/sshd_config.d/*.conf",
            "HostKey /etc/ssh/ssh_host_ed25519_key",
            "KbdInteractiveAuthentication no",
            "UsePAM yes",
            "X11Forwarding yes",
            "PrintMotd no",
            "PidFile none",
            "LogLevel DEBUG1",
            "AcceptEnv LANG LC_*",
            "",
        ].join("\n"));
        spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", clientKey]);
        const publicKey = fs.readFileSync(`${clientKey}.pub`, "utf8");
        fs.writeFileSync(path.join(ns.etc, sshdDropInPath.replace(/^\/etc\//, "")), renderSshdDropIn({ tunnelPort }));
        fs.mkdirSync(path.join(ns.etc, path.dirname(authorizedKeysPath).replace(/^\/etc\//, "")), { mode: 0o755 });
        fs.writeFileSync(path.join(ns.etc, authorizedKeysPath.replace(/^\/etc\//, "")), renderAuthorizedKeys({ publicKey, tunnelPort }), { mode: 0o644 });
        fs.writeFileSync(knownHosts, knownHostsLine("127.0.0.1", 22, fs.readFileSync(path.join(etcSsh, "ssh_host_ed25519_key.pub"), "utf8")));

        // The tunnel user exists only inside the namespace, as the VPS step creates it.
        addSystemUser(ns, tunnelUser, 64999, "overlay SSH reverse tunnel");
        fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

        const check = ns.run("/usr/sbin/sshd", ["-t", "-f", "/etc/ssh/sshd_config"]);
        assert.equal(check.status, 0, `sshd -t: ${check.stderr}`);
        // sshd logs to a file: a pipe, undrained while the test waits on a client, would stall it.
        const logFile = path.join(scratch, "sshd.log");
        ns.start("/usr/sbin/sshd", ["-D", "-E", logFile, "-f", "/etc/ssh/sshd_config"]);
        sshdLog = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "");
        const backend = ns.start(process.execPath, ["-e", `require("http").createServer((q, s) => s.end("backend-ok")).listen(${backendPort}, "127.0.0.1")`]);
        captureOutput(backend);
        assert.ok(await waitUntil(() => get(backendPort) === "backend-ok", 10_000), "the test backend did not start");
        assert.ok(await waitUntil(() => ns.run("ssh-keyscan", ["-p", "22", "127.0.0.1"], { timeoutMs: 5000 }).stdout.includes("ssh-ed25519"), 10_000), `sshd did not start:\n${sshdLog()}`);
    });

    after(() => {
        ns?.destroy();
        fs.rmSync(scratch, { recursive: true, force: true });
    });

    it("applies the Match block to the tunnel user only", () => {
        const effective = (user: string) => ns.run("/usr/sbin/sshd", ["-T", "-f", "/etc/ssh/sshd_config", "-C", `user=${user},host=x,addr=127.0.0.1`]).stdout;
        const tunnel = effective(tunnelUser);
        for (const line of ["allowtcpforwarding remote", `permitlisten 127.0.0.1:${tunnelPort}`, "permitopen none", "gatewayports no", "x11forwarding no",
            "allowagentforwarding no", "allowstreamlocalforwarding no", "permittty no", "forcecommand /bin/false", "clientaliveinterval 15", "clientalivecountmax 3"]) {
            assert.match(tunnel, new RegExp(`^${line}$`, "m"), line);
        }
        assert.match(effective("root"), /^x11forwarding yes$/m, "the Match block leaks to other users");
    });

    it("carries traffic through `ssh -N -R 127.0.0.1:<port>:...`", async () => {
        const ssh = ns.start("ssh", [...sshBase(), "-N", "-o", "ExitOnForwardFailure=yes", "-R", `127.0.0.1:${tunnelPort}:127.0.0.1:${backendPort}`, target]);
        const log = captureOutput(ssh);
        try {
            assert.ok(await waitUntil(() => get(tunnelPort) === "backend-ok", 15_000), `no traffic through the tunnel:\n${log()}\n${sshdLog().slice(-2000)}`);
        } finally {
            await stop(ssh);
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
            await stop(ssh);
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

    it("comes back within 30 s under autossh with the router's flags after its ssh is killed", async () => {
        const argv = autosshCommand({
            sshHost: "127.0.0.1", sshPort: 22, tunnelPort, targetHost: "127.0.0.1", targetPort: backendPort,
            identityFile: clientKey, knownHostsFile: knownHosts,
        });
        const autossh = ns.start(argv[0], argv.slice(1), { ...autosshEnvironment, AUTOSSH_DEBUG: "1" });
        const log = captureOutput(autossh);
        try {
            assert.ok(await waitUntil(() => get(tunnelPort) === "backend-ok", 20_000), `autossh did not establish the tunnel:\n${log()}`);
            const ssh = spawnSync("pgrep", ["-P", String(autosshPid(autossh)), "-x", "ssh"], { encoding: "utf8" }).stdout.trim();
            assert.match(ssh, /^\d+$/, `autossh's ssh child not found:\n${log()}`);
            const killedAt = Date.now();
            process.kill(Number(ssh), "SIGKILL");
            assert.ok(await waitUntil(() => get(tunnelPort) !== "backend-ok", 5000), "the tunnel did not go down");
            const back = await waitUntil(() => get(tunnelPort) === "backend-ok", 30_000, 200);
            const seconds = (Date.now() - killedAt) / 1000;
            console.log(`# autossh restored the tunnel ${seconds.toFixed(1)} s after its ssh was killed`);
            assert.ok(back, `the tunnel was not back within 30 s:\n${log()}`);
        } finally {
            await stop(autossh);
        }
    });
});

/** The pid of autossh itself: `ip netns exec` runs it as a child of the ip process's pid. */
function autosshPid(child: ChildProcess): number {
    const found = spawnSync("pgrep", ["-P", String(child.pid), "-x", "autossh"], { encoding: "utf8" }).stdout.trim();
    return found ? Number(found) : Number(child.pid);
}

async function stop(child: ChildProcess): Promise<void> {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    child.kill("SIGKILL");
}
