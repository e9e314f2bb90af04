// The ssh command line a command provider connection amounts to: the connection's user,
// key and port, and its pinned host key as the only known host. The e2e uses it to run a
// VPS step's own command line again, with its stdin, as the command provider sends it.
import * as fs from "node:fs";
import * as path from "node:path";
import { knownHostsLine } from "../../components/router/tunnel";

export interface Connection {
    readonly host: string;
    readonly port?: number;
    readonly user: string;
    readonly privateKey: string;
    readonly hostKey?: string;
}

export function sshArgs(connection: Connection, scratch: string, command: string): string[] {
    const dir = fs.mkdtempSync(path.join(scratch, "ssh-"));
    const key = path.join(dir, "key");
    fs.writeFileSync(key, `${connection.privateKey.trim()}\n`, { mode: 0o600 });
    const knownHosts = path.join(dir, "known_hosts");
    const port = Number(connection.port ?? 22);
    if (!connection.hostKey) throw new Error("the program's SSH connection pins no host key");
    fs.writeFileSync(knownHosts, knownHostsLine(connection.host, port, connection.hostKey));
    return ["-i", key, "-p", String(port), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", `${connection.user}@${connection.host}`, command];
}
