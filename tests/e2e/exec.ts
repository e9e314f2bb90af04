// Runs a program in a network namespace without blocking the event loop (the engine runs
// several registrations at once), with stdin, a time bound and the output kept.
import { spawn } from "node:child_process";
import { Netns } from "../helpers/netns";

export interface Result {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
    readonly ms: number;
}

export interface ExecOptions {
    readonly input?: string;
    readonly timeoutMs?: number;
    readonly env?: NodeJS.ProcessEnv;
    readonly cwd?: string;
}

export function exec(ns: Netns | undefined, command: string, args: string[], options: ExecOptions = {}): Promise<Result> {
    const started = Date.now();
    const argv = ns ? ["netns", "exec", ns.name, command, ...args] : args;
    const child = spawn(ns ? "ip" : command, argv, { env: { ...process.env, ...options.env }, cwd: options.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.on("error", () => { /* the program did not read all of it */ });
    child.stdin.end(options.input ?? "");
    const timer = setTimeout(() => {
        stderr += `\n(killed after ${options.timeoutMs ?? 60_000} ms)`;
        child.kill("SIGKILL");
    }, options.timeoutMs ?? 60_000);
    return new Promise((resolve) => {
        child.on("close", (status) => {
            clearTimeout(timer);
            resolve({ status, stdout, stderr, ms: Date.now() - started });
        });
    });
}

/** Like exec, but a non-zero exit is an error that shows the output. */
export async function mustExec(ns: Netns | undefined, command: string, args: string[], options: ExecOptions = {}): Promise<Result> {
    const r = await exec(ns, command, args, options);
    if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${r.status}:\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
    return r;
}
