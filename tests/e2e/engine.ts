// A stand-in for `pulumi up` with no Pulumi CLI: the real program (index.ts) runs under
// Pulumi's mock runtime, and each registration is carried out for real, in the order and with
// the inputs the program gives it. local.Commands run with `sh -c` in the home namespace (where
// `kubectl exec` is stood in for); remote.Commands run over real SSH into the VM, the way
// the command provider runs them: the command line, with its stdin; Kubernetes workloads are
// handed to the caller, which starts them as processes and waits for them to be ready.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { RawConfig } from "../../config";
import { computedOutputs } from "../../plan/mocks";
import { ed25519Keypair } from "../../plan/placeholderKeys";
import { unwrapSecrets } from "../../plan/values";
import { valueOf } from "../helpers/evaluate";
import { Netns } from "../helpers/netns";
import { project, repoRoot } from "../helpers/stack";
import { exec, Result } from "./exec";

export interface Registration {
    readonly type: string;
    readonly name: string;
    /** Plain inputs (secrets unwrapped). */
    readonly inputs: Record<string, any>;
    /** What the command printed, for commands. */
    readonly result?: Result;
}

export interface Kubelet {
    /** Starts a StatefulSet's or Deployment's pod; resolves when it is ready. */
    run(inputs: Record<string, any>, objects: ClusterObjects): Promise<void>;
}

/** ConfigMaps' data and Secrets' stringData by object name, as the program created them. */
export interface ClusterObjects {
    readonly configMaps: Map<string, Record<string, string>>;
    readonly secrets: Map<string, Record<string, string>>;
}

export interface EngineOptions {
    readonly home: Netns;
    /** Environment for local commands (PATH with the kubectl stand-in, HEADSCALE_CONFIG). */
    readonly localEnv: () => NodeJS.ProcessEnv;
    readonly kubelet: Kubelet;
    readonly scratch: string;
    readonly timeoutMs: number;
}

export interface Deployment {
    readonly exports: Record<string, unknown>;
    /** In the order each registration completed. */
    readonly registrations: Registration[];
}

const entry = path.join(repoRoot, "index.ts");

/** The ssh command line the command provider's connection amounts to. */
export function remoteSsh(connection: Record<string, any>, scratch: string, command: string): string[] {
    const dir = fs.mkdtempSync(path.join(scratch, "ssh-"));
    const key = path.join(dir, "key");
    fs.writeFileSync(key, `${String(connection.privateKey).trim()}\n`, { mode: 0o600 });
    const knownHosts = path.join(dir, "known_hosts");
    const port = Number(connection.port ?? 22);
    if (!connection.hostKey) throw new Error("the program's SSH connection pins no host key");
    fs.writeFileSync(knownHosts, `${port === 22 ? connection.host : `[${connection.host}]:${port}`} ${connection.hostKey}\n`);
    return ["-i", key, "-p", String(port), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", `${connection.user}@${connection.host}`, command];
}

export async function up(config: RawConfig, options: EngineOptions): Promise<Deployment> {
    const registrations: Registration[] = [];
    const failures: string[] = [];
    let failed: () => void = () => {};
    const firstFailure = new Promise<void>((resolve) => (failed = resolve));
    const objects: ClusterObjects = { configMaps: new Map(), secrets: new Map() };
    let pending = 0;

    const perform = async (type: string, name: string, inputs: Record<string, any>): Promise<Record<string, unknown>> => {
        switch (type) {
            case "command:local:Command":
            case "command:remote:Command": {
                const result = type === "command:local:Command"
                    ? await exec(options.home, "sh", ["-c", inputs.create], { input: inputs.stdin, env: { ...options.localEnv(), ...inputs.environment }, timeoutMs: options.timeoutMs })
                    : await exec(options.home, "ssh", remoteSsh(inputs.connection, options.scratch, inputs.create), { input: inputs.stdin, timeoutMs: options.timeoutMs });
                // Never the output itself: a mint's stdout is a key.
                if (result.status !== 0) throw new Error(`${type} ${name} exited ${result.status}: ${inputs.logging === "none" ? "(its output is not logged)" : result.stderr}`);
                registrations.push({ type, name, inputs, result });
                // As the provider keeps them: without the last newline.
                return { stdout: result.stdout.replace(/\n$/, ""), stderr: result.stderr.replace(/\n$/, "") };
            }
            case "tls:index/privateKey:PrivateKey": {
                // A fresh key, as the tls provider generates (the plan's are derived from names).
                const key = ed25519Keypair(randomBytes(32));
                registrations.push({ type, name, inputs });
                return { publicKeyOpenssh: `${key.publicKeyOpenssh}\n`, privateKeyOpenssh: key.privateKeyOpenssh, privateKeyPem: key.privateKeyPem };
            }
            case "kubernetes:core/v1:ConfigMap":
                objects.configMaps.set(inputs.metadata.name, inputs.data ?? {});
                break;
            case "kubernetes:core/v1:Secret":
                objects.secrets.set(inputs.metadata.name, inputs.stringData ?? {});
                break;
            case "kubernetes:apps/v1:StatefulSet":
            case "kubernetes:apps/v1:Deployment":
                await options.kubelet.run(inputs, objects);
                break;
        }
        registrations.push({ type, name, inputs });
        return {};
    };

    // A failed registration also rejects the SDK's own promises for that resource; it is
    // reported once, from `failures`.
    const swallow = (reason: unknown) => {
        if (!failures.length) {
            failures.push(String((reason as Error)?.message ?? reason));
            failed();
        }
    };
    process.on("unhandledRejection", swallow);
    await pulumi.runtime.setMocks({
        newResource: async (args) => {
            pending++;
            try {
                // The SDK hands secrets to the mocks still wrapped; the real provider sees plain values.
                const done = await perform(args.type, args.name, unwrapSecrets(args.inputs) as Record<string, any>);
                return { id: `${args.name}-id`, state: { ...args.inputs, ...computedOutputs(args.type, args.name, args.inputs), ...done } };
            } catch (err) {
                failures.push(`${args.name}: ${(err as Error).message}`);
                failed();
                throw err;
            } finally {
                pending--;
            }
        },
        call: (args) => {
            throw new Error(`not implemented: ${args.token}`);
        },
    }, project, "e2e", false);
    pulumi.runtime.setAllConfig(config.values, [...config.secretKeys]);

    delete require.cache[require.resolve(entry)];
    const exports = require(entry) as Record<string, unknown>;
    // Every export settles once everything it depends on has run; then wait for stragglers
    // (resources no export depends on).
    const settle = Promise.all(Object.values(exports).map((o) => valueOf(o)));
    const deadline = Date.now() + options.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([settle, firstFailure, new Promise((resolve) => (timer = setTimeout(resolve, options.timeoutMs)))]);
    clearTimeout(timer);
    let quiet = 0;
    while (Date.now() < deadline && quiet < 5 && failures.length === 0) {
        quiet = pending === 0 ? quiet + 1 : 0;
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    process.off("unhandledRejection", swallow);
    if (failures.length) throw new Error(`pulumi up (stand-in) failed:\n${failures.join("\n")}`);
    if (pending > 0) throw new Error(`pulumi up (stand-in) did not finish within ${options.timeoutMs / 1000} s`);

    const values = await settle;
    return { exports: Object.fromEntries(Object.keys(exports).map((key, i) => [key, values[i]])), registrations };
}
