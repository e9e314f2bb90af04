// The throwaway VPS: the cached Debian 12 image (build-vm-image.sh), booted with QEMU (TCG)
// from a per-run copy-on-write overlay, in the wan namespace. What the guest opens goes out
// from wan, which lets nothing leave (see network.ts) but connections to its own loopback.
// There, the mirror's port is relayed through a Unix socket to a relay on this machine that
// connects to Debian's mirror (the one this machine's apt uses) and nowhere else: the guest's
// /etc/hosts names 10.0.2.2 (QEMU's address for wan's loopback) as the mirror's host.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { captureOutput, Netns, waitUntil } from "../helpers/netns";
import { repoRoot } from "../helpers/stack";
import { requireTool } from "../helpers/tools";
import { exec, ExecOptions, Result } from "./exec";
import { Forward } from "./network";

export interface VmImage {
    readonly dir: string;
    /** root's login key (the user's VPS key in the stack config). */
    readonly privateKey: string;
    /** "ssh-ed25519 AAAA..." of the guest: pinned as vpsHostKey. */
    readonly hostKey: string;
}

export function readImage(dir: string): VmImage {
    const need = ["disk.img", "vmlinuz", "initrd.img", "id_ed25519", "ssh_host_ed25519_key.pub"];
    const missing = need.filter((f) => !fs.existsSync(path.join(dir, f)));
    if (missing.length) {
        throw new Error(`the VM image in ${dir} lacks ${missing.join(", ")}: run \`bash tests/e2e/build-vm-image.sh ${dir}\` (npm run test:e2e does)`);
    }
    const [type, key] = fs.readFileSync(path.join(dir, "ssh_host_ed25519_key.pub"), "utf8").trim().split(/\s+/);
    return { dir, privateKey: fs.readFileSync(path.join(dir, "id_ed25519"), "utf8"), hostKey: `${type} ${key}` };
}

export interface Vm {
    /** Runs a command on the guest as root (the harness's own access, for checks). */
    ssh(command: string, options?: ExecOptions): Promise<Result>;
    serialLog(): string;
    stop(): void;
}

/** The host and port of the Debian mirror this machine's apt uses (build-vm-image.sh gave the guest the same). */
function debianMirror(): { host: string; port: number } {
    const uri = new URL(execFileSync("bash", [path.join(repoRoot, "scripts", "debian-mirror.sh")], { encoding: "utf8" }).trim());
    return { host: uri.hostname, port: Number(uri.port || (uri.protocol === "https:" ? 443 : 80)) };
}

export async function bootVm(image: VmImage, runDir: string, wan: Netns, forwards: readonly Forward[]): Promise<Vm> {
    const qemu = requireTool("qemu-system-x86_64");
    const qemuImg = requireTool("qemu-img");
    const socat = requireTool("socat");
    fs.mkdirSync(runDir, { recursive: true });
    const disk = path.join(runDir, "vps.qcow2");
    const overlay = await exec(undefined, qemuImg, ["create", "-q", "-f", "qcow2", "-b", path.join(image.dir, "disk.img"), "-F", "raw", disk]);
    if (overlay.status !== 0) throw new Error(`qemu-img create: ${overlay.stderr}`);

    // The mirror relay: wan's 127.0.0.1:<port> → a Unix socket (the file system crosses
    // namespaces) → the mirror's port, from this machine's network.
    const mirror = debianMirror();
    const mirrorSocket = path.join(runDir, "mirror.sock");
    const relay: ChildProcess = spawn(socat, [`UNIX-LISTEN:${mirrorSocket},fork,mode=600`, `TCP:${mirror.host}:${mirror.port}`], { stdio: "ignore" });
    wan.start(socat, [`TCP-LISTEN:${mirror.port},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${mirrorSocket}`]);

    const keyFile = path.join(runDir, "root_ed25519");
    fs.writeFileSync(keyFile, image.privateKey, { mode: 0o600 });
    const ssh22 = forwards.find((f) => f.protocol === "tcp" && f.guestPort === 22);
    if (!ssh22) throw new Error("no forward for the VM's port 22");
    const knownHosts = path.join(runDir, "known_hosts");
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${ssh22.hostPort} ${image.hostKey}\n`);

    const netdev = [
        "user,id=net0",
        ...forwards.map((f) => `hostfwd=${f.protocol}:127.0.0.1:${f.hostPort}-:${f.guestPort}`),
    ].join(",");
    const serial = path.join(runDir, "serial.log");
    const child = wan.start(qemu, [
        "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "1024",
        "-kernel", path.join(image.dir, "vmlinuz"), "-initrd", path.join(image.dir, "initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0 quiet",
        "-drive", `file=${disk},if=virtio,format=qcow2`,
        "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",
        "-display", "none", "-serial", `file:${serial}`, "-monitor", "none",
    ]);
    const qemuOutput = captureOutput(child);
    const serialLog = () => (fs.existsSync(serial) ? fs.readFileSync(serial, "utf8") : "");
    const ssh = (command: string, options: ExecOptions = {}) => exec(wan, "ssh", [
        "-i", keyFile, "-p", String(ssh22.hostPort), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        // One connection for all the harness's checks: the firewall rate-limits new SSH
        // connections per source, and every client of the VM comes from QEMU's 10.0.2.2.
        "-o", "ControlMaster=auto", "-o", `ControlPath=${path.join(runDir, "control.sock")}`, "-o", "ControlPersist=1200",
        // A master whose connection dies goes away within seconds; the next check opens a new one.
        "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
        "root@127.0.0.1", command,
    ], { timeoutMs: 120_000, ...options });
    const stop = () => {
        child.kill("SIGKILL");
        relay.kill("SIGKILL");
        fs.rmSync(disk, { force: true });
    };

    const booted = await waitUntil(async () => child.exitCode === null && (await ssh("true", { timeoutMs: 15_000 })).status === 0, 240_000, 2_000);
    if (!booted) {
        stop();
        throw new Error(`the VM did not answer on ssh within 240 s.\nqemu: ${qemuOutput().slice(-2000)}\nconsole (last lines):\n${serialLog().slice(-3000)}`);
    }
    return { ssh, serialLog, stop };
}
