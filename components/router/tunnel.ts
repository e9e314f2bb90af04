// The reverse tunnel that carries headscale from the home cluster to the VPS: the autossh
// command line, the known_hosts line that pins the VPS, and the names both ends agree on.
// Pure: the router's container and the VM test run exactly this argv.

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

/** The environment autossh runs with: a failed first attempt is retried like any other. */
export const autosshEnvironment = { AUTOSSH_GATETIME: "0" } as const;

/**
 * autossh's argv. `-M 0` leaves liveness to ssh's ServerAlive probes (15 s × 3); the host key
 * must match the pinned one; the forward binds 127.0.0.1 explicitly because the VPS's
 * `permitlisten` names that address; if the forward cannot be set up, ssh exits and autossh
 * tries again.
 */
export function autosshCommand(args: TunnelArgs): string[] {
    return [
        "autossh", "-M", "0", "-N",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=3",
        "-o", "ExitOnForwardFailure=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", `UserKnownHostsFile=${args.knownHostsFile}`,
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "UpdateHostKeys=no",
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-i", args.identityFile,
        "-p", String(args.sshPort),
        "-R", `127.0.0.1:${args.tunnelPort}:${args.targetHost}:${args.targetPort}`,
        `${tunnelUser}@${args.sshHost}`,
    ];
}

/** One known_hosts line pinning the VPS host key, in the form ssh looks up for this port. */
export function knownHostsLine(sshHost: string, sshPort: number, hostKey: string): string {
    const [type, blob] = hostKey.trim().split(/\s+/);
    const host = sshPort === 22 ? sshHost : `[${sshHost}]:${sshPort}`;
    return `${host} ${type} ${blob}\n`;
}
