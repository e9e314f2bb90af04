// A network namespace of the test's own, with only loopback, for running real daemons on
// their real ports without touching the host's network. `ip netns exec` also bind-mounts
// /etc/netns/<name>/<entry> over /etc/<entry>, which lets a test give sshd its own /etc/ssh
// and an extra user without changing the host's files.
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

export interface Netns {
    readonly name: string;
    /** The directory whose entries replace /etc/<entry> inside the namespace. */
    readonly etc: string;
    run(command: string, args: string[], options?: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): SpawnSyncReturns<string>;
    start(command: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
    /**
     * Gives the namespace a default route into a veth pair whose both ends stay inside it:
     * programs that wait for "the network" (tailscaled) see one, and nothing leaves.
     */
    addDeadEndRoute(): void;
    /** The processes running in the namespace now. */
    pids(): number[];
    destroy(): void;
}

export function createNetns(prefix: string): Netns {
    if (process.getuid?.() !== 0) throw new Error("these tests start real daemons in a network namespace and must run as root");
    if (spawnSync("ip", ["-V"]).status !== 0) throw new Error("iproute2 (`ip`) is required: apt-get install iproute2");
    const name = `${prefix}-${process.pid}`;
    const etc = path.join("/etc/netns", name);
    const add = spawnSync("ip", ["netns", "add", name], { encoding: "utf8" });
    if (add.status !== 0) throw new Error(`ip netns add ${name}: ${add.stderr}`);
    spawnSync("ip", ["-n", name, "link", "set", "lo", "up"]);
    fs.mkdirSync(etc, { recursive: true });
    const children: ChildProcess[] = [];
    const ns: Netns = {
        name,
        etc,
        run(command, args, options = {}) {
            return spawnSync("ip", ["netns", "exec", name, command, ...args], {
                encoding: "utf8",
                input: options.input,
                timeout: options.timeoutMs ?? 30_000,
                env: { ...process.env, ...options.env },
            });
        },
        start(command, args, env) {
            const child = spawn("ip", ["netns", "exec", name, command, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
            children.push(child);
            return child;
        },
        addDeadEndRoute() {
            ip(ns, "link", "add", "deadend0", "type", "veth", "peer", "name", "deadend1");
            ip(ns, "addr", "add", "192.0.2.1/24", "dev", "deadend0");
            ip(ns, "link", "set", "deadend0", "up");
            ip(ns, "link", "set", "deadend1", "up");
            ip(ns, "route", "add", "default", "dev", "deadend0");
        },
        pids() {
            return spawnSync("ip", ["netns", "pids", name], { encoding: "utf8" }).stdout.split(/\s+/).filter(Boolean).map(Number);
        },
        destroy() {
            for (const child of children) child.kill("SIGKILL");
            // Whatever still runs inside goes with the namespace's processes.
            for (const pid of ns.pids()) {
                try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
            }
            spawnSync("ip", ["netns", "delete", name]);
            fs.rmSync(etc, { recursive: true, force: true });
        },
    };
    return ns;
}

/** `ip -n NS ARGS...`, or `ip ARGS...` without a namespace; throws with ip's message. */
export function ip(ns: Netns | undefined, ...args: string[]): void {
    const r = spawnSync("ip", ns ? ["-n", ns.name, ...args] : args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`ip ${ns ? `-n ${ns.name} ` : ""}${args.join(" ")}: ${r.stderr}`);
}

/** A veth pair from `a` (named aName, address aAddr) to `b` (bName, bAddr), both ends up. */
export function link(a: Netns, aName: string, aAddr: string, b: Netns, bName: string, bAddr: string): void {
    ip(a, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.name);
    ip(a, "addr", "add", aAddr, "dev", aName);
    ip(b, "addr", "add", bAddr, "dev", bName);
    ip(a, "link", "set", aName, "up");
    ip(b, "link", "set", bName, "up");
}

/** Runs a command in the namespace; throws with its message if it fails. */
export function mustRun(ns: Netns, command: string, args: string[], input?: string): void {
    const r = ns.run(command, args, { input });
    if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} in ${ns.name}: ${r.stderr}`);
}

/**
 * An nftables table that drops every packet from or to an address in the given hooks, ahead of
 * other rules: a host (or pod) cut off as a lost one is, so that no FIN or RST leaves it.
 */
export function dropAddressTable(table: string, address: string, hooks: readonly ("forward" | "input" | "output")[]): string {
    const chains = hooks.map((hook) => `  chain ${hook} {\n    type filter hook ${hook} priority -10;\n    ip saddr ${address} drop\n    ip daddr ${address} drop\n  }`);
    return `table inet ${table} {\n${chains.join("\n")}\n}\n`;
}

/** Collects a child's output for messages. */
export function captureOutput(child: ChildProcess): () => string {
    let text = "";
    child.stdout?.on("data", (d) => (text += d));
    child.stderr?.on("data", (d) => (text += d));
    return () => text;
}

/** Ends a child process (SIGKILL) and waits, at most 3 s, until it has gone. */
export async function stopChild(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
}

/** A process and all its descendants, parents first (from /proc). */
export function processTree(root: number): number[] {
    const children = new Map<number, number[]>();
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
            const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
        } catch {
            // it ended meanwhile
        }
    }
    const tree: number[] = [];
    for (let queue = [root]; queue.length;) {
        const pid = queue.shift()!;
        tree.push(pid);
        queue.push(...(children.get(pid) ?? []));
    }
    return tree;
}

/** A signal to a process and everything under it: SIGKILL as a lost node ends them, SIGSTOP freezes them. */
export function signalTree(root: number, signal: NodeJS.Signals): void {
    for (const pid of processTree(root)) {
        try {
            process.kill(pid, signal);
        } catch {
            // it ended meanwhile
        }
    }
}

/** Polls until `check` returns true; bounded in time and attempts. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < Math.ceil(timeoutMs / stepMs) + 1 && Date.now() <= deadline; i++) {
        try {
            if (await check()) return true;
        } catch {
            // not ready yet
        }
        await new Promise((r) => setTimeout(r, stepMs));
    }
    return false;
}

/** A TCP port that is free on the host's loopback right now. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer().listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        }).on("error", reject);
    });
}

/**
 * A system user that exists only inside the namespace (its passwd, group and shadow over the
 * host's), as a VPS step's useradd makes one: no password, no shell, no home.
 */
export function addSystemUser(ns: Netns, user: string, uid: number, comment: string, shell = "/usr/sbin/nologin"): void {
    const entries = {
        passwd: `${user}:x:${uid}:${uid}:${comment}:/nonexistent:${shell}`,
        group: `${user}:x:${uid}:`,
        shadow: `${user}:!:20000:0:99999:7:::`,
    };
    for (const [file, entry] of Object.entries(entries)) {
        const target = path.join(ns.etc, file);
        const base = fs.existsSync(target) ? target : `/etc/${file}`;
        fs.writeFileSync(target, `${fs.readFileSync(base, "utf8")}${entry}\n`, { mode: file === "shadow" ? 0o640 : 0o644 });
    }
}
