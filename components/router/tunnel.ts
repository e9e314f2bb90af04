// The reverse tunnel that carries headscale from the home cluster to the VPS: the tunnel
// container's command line, the known_hosts line that pins the VPS, and the names both ends agree on.
// Pure: the router's container and the VM test run exactly this argv.
import * as fs from "node:fs";
import * as path from "node:path";

/** The system user on the VPS that may hold the reverse forward and nothing else. */
export const tunnelUser = "tunnel";

export interface TunnelArgs {
    /** Address of the VPS's sshd. */
    readonly sshHost: string;
    readonly sshPort: number;
    /** Port on the VPS's loopback where nginx finds headscale. */
    readonly tunnelPort: number;
    /** Where the forwarded connections go from the router's side, e.g. headscale.overlay.svc:8080. */
    readonly targetHost: string;
    readonly targetPort: number;
    readonly identityFile: string;
    readonly knownHostsFile: string;
}

/**
 * How quickly each end notices a dead tunnel, how often a router that does not hold the VPS's
 * port asks for it, and how soon a router connects again. Each router's ssh sends a heartbeat
 * on its session every 5 s and probes the VPS as often (ServerAlive, 3 unanswered end it). A
 * lost holder's port is free for the next router 15 s after its last heartbeat (the VPS's
 * tunnel-session ends the connection), at once if its connection closed; a standby asks every
 * 3 s. A connection that ends after a minute or more is opened again at once; one that fails
 * sooner waits 3 s, then 6, 12 … up to a minute.
 */
export const tunnelTiming = { keepaliveSeconds: 5, keepaliveCount: 3, retrySeconds: 3, maxWaitSeconds: 60 } as const;

/** hold-tunnel.sh, which the tunnel container runs with `sh -c`. */
export const holdTunnelScript = fs.readFileSync(path.join(__dirname, "scripts", "hold-tunnel.sh"), "utf8");

/**
 * The tunnel container's argv, the same for one router or several: hold-tunnel.sh keeps an ssh
 * control master open (liveness is ssh's ServerAlive probes) with no forward of its own and a
 * session that carries its heartbeat, asks for the forward over it every retrySeconds, and
 * connects again when it ends. Whichever router's request sshd grants holds the port until its
 * connection ends. The host key must match the pinned one; the forward binds 127.0.0.1
 * explicitly because the VPS's `permitlisten` names it. `-F /dev/null`: the image's ssh_config
 * plays no part.
 */
export function tunnelCommand(args: TunnelArgs & { readonly controlPath: string }): string[] {
    const destination = `${tunnelUser}@${args.sshHost}`;
    const forward = `127.0.0.1:${args.tunnelPort}:${args.targetHost}:${args.targetPort}`;
    const master = [
        // A session with no TTY, whatever it runs (the VPS runs its own command): its input is the heartbeat.
        "ssh", "-T", "-F", "/dev/null",
        "-o", `ServerAliveInterval=${tunnelTiming.keepaliveSeconds}`,
        "-o", `ServerAliveCountMax=${tunnelTiming.keepaliveCount}`,
        // A refused forward must not end the connection: a standby keeps it to ask again.
        "-o", "ExitOnForwardFailure=no",
        "-o", "StrictHostKeyChecking=yes",
        "-o", `UserKnownHostsFile=${args.knownHostsFile}`,
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "UpdateHostKeys=no",
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        // A socket left behind by a killed ssh is removed by the next master ("auto").
        "-o", "ControlMaster=auto",
        "-o", `ControlPath=${args.controlPath}`,
        "-o", "ControlPersist=no",
        "-i", args.identityFile,
        "-p", String(args.sshPort),
        destination,
    ];
    return ["sh", "-c", holdTunnelScript, "hold-tunnel", String(tunnelTiming.retrySeconds), String(tunnelTiming.maxWaitSeconds), String(tunnelTiming.keepaliveSeconds), args.controlPath, forward, destination, ...master];
}

/** One known_hosts line pinning the VPS host key, in the form ssh looks up for this port. */
export function knownHostsLine(sshHost: string, sshPort: number, hostKey: string): string {
    const [type, blob] = hostKey.trim().split(/\s+/);
    const host = sshPort === 22 ? sshHost : `[${sshHost}]:${sshPort}`;
    return `${host} ${type} ${blob}\n`;
}
