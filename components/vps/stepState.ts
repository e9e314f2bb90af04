// Whether the VPS still matches what a step applied. The command provider never reads a remote
// command back, so beside each step's remote.Command sits one of these: a dynamic resource
// whose read runs the step's read-only `check` over SSH (same host, port, user, key and pinned
// host key). `pulumi refresh` stores the differences it names as `drift`; a later `pulumi up`
// sees drift in the state, and this resource's update runs the step's `apply` again.
//
// The provider's functions are serialised into the state and run by Pulumi in a process of its
// own, so they use only Node.js built-ins and this file's own functions.
import * as childProcess from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

export interface StepConnection {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly privateKey: string;
    /** "ssh-ed25519 AAAA...": ssh refuses any other host. */
    readonly hostKey: string;
}

/** What the provider reads from its inputs and, on refresh, from the state. */
export interface StepStateProps {
    /** The step's name, for messages. */
    readonly step: string;
    readonly connection: StepConnection;
    /** The step's stdin, the same the remote.Command sends. */
    readonly stdin: string;
    /** `bash -s -- check` and `bash -s -- apply`, through sudo for a non-root user. */
    readonly checkCommand: string;
    readonly applyCommand: string;
    /** Each difference between the VPS and what the step applied; empty when they match. */
    readonly drift?: string[];
}

/**
 * The ssh command line: batch mode, only this key, only this host key, no config files. With a
 * control path, the sessions of one Pulumi run share one connection (the VPS's firewall allows
 * few new SSH connections a minute from one address).
 */
export function sshArgs(connection: StepConnection, keyFile: string, knownHostsFile: string, remoteCommand: string, controlPath?: string): string[] {
    return [
        "-F", "/dev/null",
        "-i", keyFile,
        "-p", String(connection.port),
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=yes",
        "-o", `UserKnownHostsFile=${knownHostsFile}`,
        "-o", "GlobalKnownHostsFile=/dev/null",
        // The pinned key is filed under this alias, so the port does not matter.
        "-o", "HostKeyAlias=overlay-vps",
        "-o", "ConnectTimeout=20",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=4",
        ...(controlPath ? ["-o", "ControlMaster=auto", "-o", `ControlPath=${controlPath}`, "-o", "ControlPersist=20"] : []),
        "-l", connection.user,
        "--", connection.host,
        remoteCommand,
    ];
}

/** The `drift: ...` lines of a check's output, without the prefix. */
export function driftLines(stdout: string): string[] {
    return stdout.split("\n").filter((line) => line.startsWith("drift: ")).map((line) => line.slice("drift: ".length).trim());
}

/**
 * Whether an update is needed: the state holds drift, or the step's inputs changed (its
 * commands follow from the connection's user).
 */
export function needsUpdate(olds: StepStateProps, news: StepStateProps): boolean {
    return (olds.drift ?? []).length > 0 || olds.stdin !== news.stdin || JSON.stringify(olds.connection) !== JSON.stringify(news.connection);
}

/**
 * An error as Pulumi shows it from a dynamic provider ("<error>: <stack>"): our message and a
 * note on what it means, instead of a stack trace.
 */
function vpsError(message: string, note: string): Error {
    const error = new Error(message);
    error.name = "overlay";
    error.stack = note;
    return error;
}

function where(props: StepStateProps): string {
    return `${props.connection.user}@${props.connection.host}:${props.connection.port}`;
}

interface SshSessions {
    /** A directory of this process's own (0700) for the shared connections' sockets. */
    readonly dir: string;
    /** The last session started: the next one starts after it. */
    last: Promise<unknown>;
}

/**
 * This process's SSH sessions: one at a time, over one shared connection per VPS. The state
 * lives on globalThis because Pulumi runs each of the provider's functions from serialised
 * code, in which a module variable would not be shared between calls.
 */
function sshSessions(): SshSessions {
    const global = globalThis as { overlayVpsSsh?: SshSessions };
    if (!global.overlayVpsSsh) {
        const sessions: SshSessions = { dir: fs.mkdtempSync(path.join(os.tmpdir(), "overlay-ssh-")), last: Promise.resolve() };
        // Close each shared connection and leave nothing behind when Pulumi is done with this
        // process: it sends SIGINT. (Killed outright, a connection closes itself 20 s after
        // its last session.)
        const close = () => {
            const sockets = fs.existsSync(sessions.dir) ? fs.readdirSync(sessions.dir) : [];
            for (const socket of sockets) {
                childProcess.spawnSync("ssh", ["-F", "/dev/null", "-o", `ControlPath=${path.join(sessions.dir, socket)}`, "-O", "exit", "overlay-vps"], { stdio: "ignore", timeout: 5_000 });
            }
            fs.rmSync(sessions.dir, { recursive: true, force: true });
        };
        process.once("exit", close);
        for (const signal of ["SIGINT", "SIGTERM"] as const) {
            process.once(signal, () => {
                close();
                process.exit(0);
            });
        }
        global.overlayVpsSsh = sessions;
    }
    return global.overlayVpsSsh;
}

/** Runs a command on the VPS with the step's stdin; rejects naming the host when ssh cannot get there. */
function runOnVps(props: StepStateProps, remoteCommand: string, timeoutMs: number): Promise<string> {
    const sessions = sshSessions();
    const session = sessions.last.then(() => sshSession(props, remoteCommand, timeoutMs, sessions.dir));
    sessions.last = session.catch(() => undefined);
    return session;
}

function sshSession(props: StepStateProps, remoteCommand: string, timeoutMs: number, socketDir: string): Promise<string> {
    // The key and the pinned host key, on disk only while this session starts and runs.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-ssh-"));
    const keyFile = path.join(dir, "key");
    const knownHosts = path.join(dir, "known_hosts");
    fs.writeFileSync(keyFile, props.connection.privateKey.trimEnd() + "\n", { mode: 0o600 });
    fs.writeFileSync(knownHosts, `overlay-vps ${props.connection.hostKey.trim().split(/\s+/).slice(0, 2).join(" ")}\n`, { mode: 0o600 });
    // One shared connection per address, user and pinned host key: another host key never
    // rides on a connection that was checked against the first.
    const { host, port, user, hostKey } = props.connection;
    const controlPath = path.join(socketDir, crypto.createHash("sha256").update(JSON.stringify([host, port, user, hostKey.trim()])).digest("hex").slice(0, 32));
    return new Promise<string>((resolve, reject) => {
        const child = childProcess.spawn("ssh", sshArgs(props.connection, keyFile, knownHosts, remoteCommand, controlPath), { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.stdin.on("error", () => undefined);
        child.on("error", (err) => {
            clearTimeout(timer);
            reject(vpsError(`could not run ssh to reach the VPS at ${where(props)} (step ${props.step}): ${err.message}`, "install the OpenSSH client"));
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            const said = stderr.trim().split("\n").filter((line) => line && !/^Warning: Permanently added/.test(line)).slice(-6).join("\n");
            const action = remoteCommand.split(" ").pop();
            if (code === 0) resolve(stdout);
            else if (code === 255 || signal) {
                reject(vpsError(`could not reach the VPS at ${where(props)} to ${action} the step ${props.step}${signal ? ` (no answer in ${timeoutMs / 1000} s)` : ""}: ${said || "ssh failed"}`,
                    "nothing was changed, in the state or on the VPS; run again when the VPS answers"));
            } else {
                reject(vpsError(`the step ${props.step} failed its ${action} on ${where(props)} (exit ${code}): ${said}`, "the step's own words are above"));
            }
        });
        child.stdin.end(props.stdin);
    }).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

async function check(props: StepStateProps): Promise<string[]> {
    return driftLines(await runOnVps(props, props.checkCommand, 120_000));
}

/** The step applied again, then checked: drift that its apply cannot repair is an error naming it. */
async function applyAndCheck(props: StepStateProps): Promise<void> {
    await runOnVps(props, props.applyCommand, 900_000);
    const left = await check(props);
    if (left.length > 0) {
        throw vpsError(`the step ${props.step} ran on ${where(props)}, but the VPS still differs from it:\n  ${left.join("\n  ")}`,
            "its apply cannot repair this: something else on the VPS overrides it");
    }
}

export const stepStateProvider: pulumi.dynamic.ResourceProvider = {
    // The remote.Command this sits beside has just applied the step: check it took.
    async create(inputs: StepStateProps) {
        const drift = await check(inputs);
        if (drift.length > 0) await applyAndCheck(inputs);
        return { id: inputs.step, outs: { ...inputs, drift: [] } };
    },
    // Never reports the resource gone: an unreachable VPS is an error, and the state stays.
    async read(id: string, props: StepStateProps) {
        const drift = await check(props);
        // Pulumi shows what a dynamic provider writes to stderr: each difference by name.
        for (const line of drift) console.error(`overlay: the VPS step ${props.step} has drifted: ${line}`);
        return { id, props: { ...props, drift } };
    },
    async diff(_id: string, olds: StepStateProps, news: StepStateProps) {
        return { changes: needsUpdate(olds, news), replaces: [], deleteBeforeReplace: false };
    },
    // Drift found by a refresh, or new inputs (which the remote.Command has applied already):
    // checked now, and applied again only where the VPS differs.
    async update(_id: string, _olds: StepStateProps, news: StepStateProps) {
        const drift = await check(news);
        if (drift.length > 0) await applyAndCheck(news);
        return { outs: { ...news, drift: [] } };
    },
    // Nothing to undo: the step's remote.Command removes what it applied.
    async delete() {},
};

export interface VpsStepStateArgs {
    readonly step: string;
    readonly connection: { readonly [K in keyof StepConnection]: pulumi.Input<StepConnection[K]> };
    readonly stdin: pulumi.Input<string>;
    readonly checkCommand: string;
    readonly applyCommand: string;
    /** Whether stdin holds secret material (the TLS key step). */
    readonly secret?: boolean;
}

/** Whether the VPS still matches one step: `drift` lists each difference, as the last refresh found them. */
export class VpsStepState extends pulumi.dynamic.Resource {
    public readonly drift!: pulumi.Output<string[]>;

    constructor(name: string, args: VpsStepStateArgs, opts?: pulumi.CustomResourceOptions) {
        const { secret, ...props } = args;
        super(stepStateProvider, name, { ...props, drift: undefined }, {
            ...opts,
            // The connection holds the private key, and the TLS key step's stdin holds its key.
            additionalSecretOutputs: secret ? ["connection", "stdin"] : ["connection"],
        });
    }
}
