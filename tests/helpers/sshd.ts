// The real OpenSSH server in a network namespace of the caller's: started and waited for, and
// set up as the VPS's tunnel endpoint (a main config like Debian's plus the rendered drop-in and
// authorized_keys at their real paths, the tunnel user, a client key for it and a known_hosts
// line pinning the host key).
import assert from "node:assert/strict";
import { ChildProcess, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { knownHostsLine, tunnelCommand, tunnelUser } from "../../components/router/tunnel";
import { renderTunnelLimits, tunnelLimitsPath } from "../../components/vps/limits";
import { authorizedKeysPath, renderAuthorizedKeys, renderSshdDropIn, sshdDropInPath, tunnelSessionScript } from "../../components/vps/sshd";
import { addSystemUser, captureOutput, Netns, waitUntil } from "./netns";
import { requireTool } from "./tools";

export interface TunnelSshd {
    /** The tunnel user's private key file. */
    readonly clientKey: string;
    /** A known_hosts file pinning this sshd on 127.0.0.1:22. */
    readonly knownHosts: string;
    /** sshd's log (LogLevel as given). */
    log(): string;
    /**
     * A router's tunnel command to this sshd, forwarding the tunnel port to 127.0.0.1:targetPort,
     * started as its container starts it: with a container runtime's soft limit of 1024 open
     * files.
     */
    startRouter(targetPort: number, controlPath: string, options?: RouterOptions): { readonly child: ChildProcess; readonly log: () => string };
}

export interface RouterOptions {
    /** Replaces the known_hosts file that pins this sshd. */
    readonly knownHostsFile?: string;
    /** The loopback address the router's connection comes from (127.0.0.1 unless given). */
    readonly bindAddress?: string;
}

/**
 * Starts sshd on the namespace's 127.0.0.1:22 and waits until it answers. It runs with systemd's
 * soft limit of 1024 open files, as ssh.service does on a VPS; the tunnel user's sessions get
 * theirs from pam_limits and the tunnel step's limits.d file, as there.
 */
export async function startTunnelSshd(ns: Netns, dir: string, options: { tunnelPort: number; logLevel?: string }): Promise<TunnelSshd> {
    for (const tool of ["ssh", "ssh-keygen", "ssh-keyscan"]) requireTool(tool);
    assert.ok(fs.existsSync("/usr/sbin/sshd"), "openssh-server is not installed: apt-get install openssh-server");
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
        `LogLevel ${options.logLevel ?? "DEBUG1"}`,
        "AcceptEnv LANG LC_*",
        "",
    ].join("\n"));
    const clientKey = path.join(dir, "id_ed25519");
    const knownHosts = path.join(dir, "known_hosts");
    spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", clientKey]);
    const publicKey = fs.readFileSync(`${clientKey}.pub`, "utf8");
    // The tunnel user's login shell, in the test's directory rather than under /usr/local.
    const sessionCommand = path.join(dir, "tunnel-session");
    fs.writeFileSync(sessionCommand, tunnelSessionScript, { mode: 0o755 });
    fs.chmodSync(dir, 0o711);
    fs.writeFileSync(path.join(ns.etc, sshdDropInPath.replace(/^\/etc\//, "")), renderSshdDropIn({ tunnelPort: options.tunnelPort, sessionCommand }));
    fs.mkdirSync(path.join(ns.etc, path.dirname(authorizedKeysPath).replace(/^\/etc\//, "")), { mode: 0o755 });
    fs.writeFileSync(path.join(ns.etc, authorizedKeysPath.replace(/^\/etc\//, "")), renderAuthorizedKeys({ publicKey, tunnelPort: options.tunnelPort, sessionCommand }), { mode: 0o644 });
    fs.writeFileSync(knownHosts, knownHostsLine("127.0.0.1", 22, fs.readFileSync(path.join(etcSsh, "ssh_host_ed25519_key.pub"), "utf8")));

    fs.cpSync("/etc/security", path.join(ns.etc, "security"), { recursive: true });
    fs.writeFileSync(path.join(ns.etc, tunnelLimitsPath.replace(/^\/etc\//, "")), renderTunnelLimits(tunnelUser));

    // The tunnel user exists only inside the namespace, as the VPS step creates it.
    addSystemUser(ns, tunnelUser, 64999, "overlay SSH reverse tunnel", sessionCommand);
    fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

    const check = ns.run("/usr/sbin/sshd", ["-t", "-f", "/etc/ssh/sshd_config"]);
    assert.equal(check.status, 0, `sshd -t: ${check.stderr}`);
    const sshd = ["/usr/sbin/sshd", "-f", "/etc/ssh/sshd_config"];
    const log = await startSshd(ns, path.join(dir, "sshd.log"), ["sh", "-c", 'ulimit -Sn 1024 && exec "$@"', "sh", ...sshd]);
    const startRouter = (targetPort: number, controlPath: string, router: RouterOptions = {}) => {
        const argv = tunnelCommand({
            sshHost: "127.0.0.1", sshPort: 22, tunnelPort: options.tunnelPort, targetHost: "127.0.0.1", targetPort,
            identityFile: clientKey, knownHostsFile: router.knownHostsFile ?? knownHosts, controlPath,
        });
        // The connection's ssh from another loopback address, which a test can cut off alone.
        if (router.bindAddress) argv.splice(argv.indexOf("ssh", 4) + 1, 0, "-o", `BindAddress=${router.bindAddress}`);
        const child = ns.start("sh", ["-c", 'ulimit -Sn 1024 && exec "$@"', "router", ...argv]);
        return { child, log: captureOutput(child) };
    };
    return { clientKey, knownHosts, log, startRouter };
}

/**
 * Starts sshd in the namespace, `command` ending in the sshd options, with `-D -E <logFile>`
 * added; waits until it answers on 127.0.0.1:22. It logs to a file: a pipe, undrained while a
 * test waits on a client, would stall it.
 */
export async function startSshd(ns: Netns, logFile: string, command: string[], env?: NodeJS.ProcessEnv): Promise<() => string> {
    ns.start(command[0], [...command.slice(1), "-D", "-E", logFile], env);
    const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8") : "");
    const listening = () => ns.run("ssh-keyscan", ["-p", "22", "127.0.0.1"], { timeoutMs: 5000 }).stdout.includes("ssh-ed25519");
    assert.ok(await waitUntil(listening, 10_000), `sshd did not start:\n${log()}`);
    return log;
}
