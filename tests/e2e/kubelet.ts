// A Node of the test cluster, whose containers are plain processes in the "home" namespace.
// It does a kubelet's part and nothing of Pulumi's: it registers its Node and keeps its Lease,
// runs the Pods the scheduler binds to it (init containers first, one at a time; each container
// with the image's program and the args, env and user its manifest gives, its volumes as
// directories filled from the API), reports their real status (phase, container states,
// restart counts, Ready from the readinessProbe, termination messages), restarts containers as
// the restartPolicy says, and stops a Pod's processes when the Pod is deleted. It also
// provisions a volume for each claim, as a cluster's storage provisioner would (and retains it).
// Only paths change: a mountPath becomes a directory here (in args, env values and the pod's
// yaml files), and tailscale keeps its state in a directory named after its TS_KUBE_SECRET, not
// in that Secret.
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { containerPaths } from "../../components/headscale/config";
import { shellQuote } from "../../components/shell";
import { captureOutput, Netns, signalTree } from "../helpers/netns";
import { toolBin } from "../helpers/tools";
import { exec } from "./exec";
import { KubeApi } from "./kubeApi";

/** Each image's entry point, here (a container's `command`, when it has one, replaces it; its image must still be here). */
const imagePrograms: Record<string, string> = { headscale: "headscale", tailscale: "containerboot", autossh: "autossh", alpine: "sh" };

const syncMs = 1_000;
const leaseRenewMs = 10_000;

interface Probe {
    httpGet: { path: string; port: string | number };
    periodSeconds?: number;
    initialDelaySeconds?: number;
}

interface Container {
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } } }[];
    ports?: { name?: string; containerPort: number }[];
    readinessProbe?: Probe;
    securityContext?: { runAsUser?: number; runAsGroup?: number };
    volumeMounts?: { name: string; mountPath: string }[];
    terminationMessagePath?: string;
    terminationMessagePolicy?: "File" | "FallbackToLogsOnError";
}

interface Volume {
    name: string;
    configMap?: { name: string; items?: { key: string; path: string }[]; defaultMode?: number; optional?: boolean };
    secret?: { secretName: string; items?: { key: string; path: string }[]; defaultMode?: number; optional?: boolean };
    persistentVolumeClaim?: { claimName: string };
    emptyDir?: object;
    projected?: object;
}

export interface RunningContainer {
    readonly name: string;
    readonly process: ChildProcess;
    readonly restartCount: number;
    log(): string;
}

export interface RunningPod {
    readonly namespace: string;
    readonly name: string;
    readonly uid: string;
    readonly containers: readonly RunningContainer[];
}

export interface NodeAgent {
    readonly nodeName: string;
    /** The pods here now (those that ended too, until deleted), by "namespace/name". */
    readonly pods: ReadonlyMap<string, RunningPod>;
    /** The running pod of a workload: the first whose name starts with `prefix`. */
    pod(namespace: string, prefix: string): RunningPod | undefined;
    /** Where the kubectl wrapper finds a container's environment: <dir>/<namespace>/<pod>/<container>.env */
    readonly execDir: string;
    /** As a node's loss would: SIGKILL to every process of the pod's containers (or of these), none started again until revive. */
    lose(namespace: string, podName: string, containers?: readonly string[]): void;
    /** Starts again the containers that lose stopped. */
    revive(namespace: string, podName: string): void;
    /** A signal to every process of one container: SIGSTOP freezes it, SIGCONT thaws it. */
    signal(namespace: string, podName: string, container: string, signal: NodeJS.Signals): void;
    /** Directory of the programs the containers run, for PATH. */
    readonly bin: string;
    /** What went wrong in the agent's loops (failed API calls, pods it could not start), for failure messages. */
    notes(): string;
    /** Stops every pod's processes and the agent's loops. */
    stop(): Promise<void>;
}

export interface NodeAgentOptions {
    /** With the node's own identity (system:node:<name>). */
    readonly api: KubeApi;
    /** With a provisioner's rights (PersistentVolumes). */
    readonly adminApi: KubeApi;
    readonly home: Netns;
    readonly root: string;
    /** Where tailscale keeps its state (a directory per TS_KUBE_SECRET), shared by the nodes as a Secret is. */
    readonly stateRoot: string;
    readonly nodeName: string;
    /** The pods' address: they share the home namespace's network. */
    readonly nodeAddress: string;
    /** Extra environment for every container (the test CA). */
    readonly extraEnv: NodeJS.ProcessEnv;
}

interface Terminated {
    exitCode: number;
    reason: string;
    message?: string;
    startedAt: string;
    finishedAt: string;
}

interface ContainerState {
    readonly spec: Container;
    readonly init: boolean;
    readonly argv: string[];
    readonly env: NodeJS.ProcessEnv;
    /** Where the container may leave its termination message, here (only under a volume). */
    readonly messageFile?: string;
    current?: RunningContainer & { startedAt: string };
    restartCount: number;
    ready: boolean;
    waiting?: string;
    /** Ended, not to be started again. */
    terminated?: Terminated;
    lastTerminated?: Terminated;
}

interface Pod extends RunningPod {
    readonly initStates: ContainerState[];
    readonly states: ContainerState[];
    readonly startTime: string;
    readonly transitions: Map<string, { status: string; time: string }>;
    stopped: boolean;
    stopping?: Promise<void>;
    lastStatus: string;
    /** Containers that lose() stopped: not started again until revive(). */
    readonly lost: Set<string>;
    relaunch?: (state: ContainerState) => void;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

export async function startNodeAgent(options: NodeAgentOptions): Promise<NodeAgent> {
    const { api, home, nodeName } = options;
    const pods = new Map<string, Pod>();
    const bin = toolBin(path.join(options.root, "bin"), ["headscale", "tailscale", "tailscaled", "containerboot"]);
    const execDir = path.join(options.root, "exec");
    // Containers run as their own users: every directory on the way to a volume must let them pass.
    fs.mkdirSync(options.root, { recursive: true });
    for (let dir = options.root; dir !== path.dirname(dir); dir = path.dirname(dir)) fs.chmodSync(dir, fs.statSync(dir).mode | 0o111);
    let running = true;
    const problems: string[] = [];
    const note = (message: string) => {
        if (problems.length < 50) problems.push(`${now()} ${message}`);
    };

    // --- the Node and its heartbeat ---
    await api.post("/api/v1/nodes", {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: nodeName, labels: { "kubernetes.io/hostname": nodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64" } },
        spec: {},
    });
    const nodeStatus = () => {
        const time = now();
        return {
            status: {
                capacity: { cpu: "4", memory: "8Gi", pods: "110", "ephemeral-storage": "20Gi" },
                allocatable: { cpu: "4", memory: "8Gi", pods: "110", "ephemeral-storage": "20Gi" },
                conditions: [
                    { type: "Ready", status: "True", reason: "KubeletReady", message: "the e2e node agent is running", lastHeartbeatTime: time, lastTransitionTime: time },
                    ...["MemoryPressure", "DiskPressure", "PIDPressure"].map((type) => ({ type, status: "False", reason: `KubeletHasNo${type}`, lastHeartbeatTime: time, lastTransitionTime: time })),
                ],
                addresses: [{ type: "InternalIP", address: options.nodeAddress }, { type: "Hostname", address: nodeName }],
                nodeInfo: {
                    kubeletVersion: "v1.34.4", kubeProxyVersion: "", containerRuntimeVersion: "e2e://processes", operatingSystem: "linux", architecture: "amd64",
                    osImage: "Debian GNU/Linux 12", kernelVersion: "", machineID: "", systemUUID: "", bootID: "",
                },
            },
        };
    };
    await api.patch(`/api/v1/nodes/${nodeName}/status`, nodeStatus());
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${nodeName}`;
    const renewLease = async () => {
        const renewTime = new Date().toISOString().replace("Z", "000Z");
        const lease = await api.find(leasePath);
        const spec = { holderIdentity: nodeName, leaseDurationSeconds: 40, renewTime };
        if (lease) await api.put(leasePath, { ...lease, spec: { ...lease.spec, ...spec } });
        else await api.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: nodeName, namespace: "kube-node-lease" }, spec });
    };
    await renewLease();

    // --- a pod's volumes: directories, filled as the kubelet fills them ---
    const decode = (data: Record<string, string> = {}) => Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
    /** A Secret's or ConfigMap's data; a missing one is undefined if optional, else an error (the pod start is tried again). */
    const objectData = async (kind: "secrets" | "configmaps", ns: string, name: string, optional?: boolean): Promise<Record<string, string> | undefined> => {
        const found = await api.find(`/api/v1/namespaces/${ns}/${kind}/${name}`);
        if (!found && !optional) throw new Error(`${kind} ${ns}/${name} does not exist (yet)`);
        return found && (kind === "secrets" ? decode(found.data) : (found.data ?? {}));
    };
    const prepareVolumes = async (pod: any, podDir: string): Promise<Map<string, string>> => {
        const ns = pod.metadata.namespace;
        const fsGroup: number | undefined = pod.spec.securityContext?.fsGroup;
        const dirs = new Map<string, string>();
        for (const volume of (pod.spec.volumes ?? []) as Volume[]) {
            if (volume.persistentVolumeClaim) {
                const claim = await api.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${volume.persistentVolumeClaim.claimName}`);
                if (!claim.spec.volumeName) throw new Error(`claim ${ns}/${claim.metadata.name} is not bound yet`);
                const pv = await api.get(`/api/v1/persistentvolumes/${claim.spec.volumeName}`);
                dirs.set(volume.name, pv.spec.hostPath.path);
                continue;
            }
            // An emptyDir gets a short path: a unix socket's path (ssh's control socket) has 108 bytes at most.
            const dir = volume.emptyDir ? path.join(options.root, "e", `${pod.metadata.uid.slice(0, 8)}-${volume.name}`) : path.join(podDir, "volumes", volume.name);
            fs.mkdirSync(dir, { recursive: true });
            if (fsGroup !== undefined) fs.chownSync(dir, 0, fsGroup);
            let files: Record<string, string> | undefined;
            let items: { key: string; path: string }[] | undefined;
            let mode = 0o644;
            if (volume.configMap) {
                const data = await objectData("configmaps", ns, volume.configMap.name, volume.configMap.optional);
                files = data ?? {};
                items = data && volume.configMap.items;
                mode = volume.configMap.defaultMode ?? mode;
            } else if (volume.secret) {
                const data = await objectData("secrets", ns, volume.secret.secretName, volume.secret.optional);
                files = data ?? {};
                items = data && volume.secret.items;
                mode = volume.secret.defaultMode ?? mode;
            } else if (volume.projected) {
                files = { namespace: ns };
            }
            fs.chmodSync(dir, files ? 0o755 : 0o2775);
            for (const item of items ?? Object.keys(files ?? {}).map((key) => ({ key, path: key }))) {
                if (files![item.key] === undefined) throw new Error(`volume ${volume.name}: no key ${item.key}`);
                const file = path.join(dir, item.path);
                fs.writeFileSync(file, files![item.key], { mode });
                if (fsGroup !== undefined) fs.chownSync(file, 0, fsGroup);
            }
            dirs.set(volume.name, dir);
        }
        return dirs;
    };

    // --- starting a pod's containers ---
    const startPod = async (manifest: any): Promise<void> => {
        const { namespace, name, uid } = manifest.metadata;
        const podDir = path.join(options.root, "pods", uid);
        fs.mkdirSync(podDir, { recursive: true, mode: 0o711 });
        const volumeDirs = await prepareVolumes(manifest, podDir);
        const fsGroup: number | undefined = manifest.spec.securityContext?.fsGroup;
        const restartPolicy: "Always" | "OnFailure" | "Never" = manifest.spec.restartPolicy ?? "Always";
        const secrets = new Map<string, Record<string, string>>();
        const secretValue = async (ref: { name: string; key: string }) => {
            if (!secrets.has(ref.name)) secrets.set(ref.name, (await objectData("secrets", namespace, ref.name))!);
            return secrets.get(ref.name)![ref.key];
        };

        const mounts = (c: Container) => (c.volumeMounts ?? []).map((m) => ({ from: m.mountPath, to: volumeDirs.get(m.name)! })).filter((m) => m.to);
        // One pass, longest mount path first, whole path components only.
        const adapt = (c: Container, text: string) => {
            const list = mounts(c).sort((a, b) => b.from.length - a.from.length);
            if (!list.length) return text;
            const pattern = new RegExp(`(?<![\\w.-])(${list.map((m) => m.from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})(?![\\w.-])`, "g");
            return text.replace(pattern, (from) => list.find((m) => m.from === from)!.to);
        };
        const initContainers: Container[] = manifest.spec.initContainers ?? [];
        const containers: Container[] = manifest.spec.containers;
        // Config files in the pod's own volumes name container paths; they name these directories here.
        for (const c of [...initContainers, ...containers]) {
            for (const m of mounts(c)) {
                if (!m.to.startsWith(podDir)) continue;
                for (const file of fs.readdirSync(m.to)) {
                    const p = path.join(m.to, file);
                    if (fs.statSync(p).isFile() && /\.ya?ml$/.test(file)) fs.writeFileSync(p, adapt(c, fs.readFileSync(p, "utf8")));
                }
            }
        }

        const envOf = async (c: Container): Promise<NodeJS.ProcessEnv> => {
            const out: NodeJS.ProcessEnv = { PATH: `${bin}:${process.env.PATH}`, ...options.extraEnv };
            for (const e of c.env ?? []) {
                if (e.valueFrom?.secretKeyRef) out[e.name] = await secretValue(e.valueFrom.secretKeyRef);
                else if (e.valueFrom?.fieldRef) out[e.name] = ({ "metadata.name": name, "metadata.namespace": namespace, "status.podIP": options.nodeAddress } as Record<string, string>)[e.valueFrom.fieldRef.fieldPath];
                else out[e.name] = e.value === undefined ? undefined : adapt(c, e.value);
            }
            if (c.image.includes("/tailscale:") && out.TS_KUBE_SECRET) {
                // State in a directory named after the Secret, kept across pods as the Secret is.
                out.TS_STATE_DIR = path.join(options.stateRoot, namespace, out.TS_KUBE_SECRET);
                delete out.TS_KUBE_SECRET;
                out.TS_SOCKET = path.join(podDir, `${c.name}.sock`);
                fs.mkdirSync(out.TS_STATE_DIR, { recursive: true });
            }
            if (c.image.includes("/headscale:")) out.HEADSCALE_CONFIG = adapt(c, path.join(containerPaths.config, "config.yaml"));
            return out;
        };
        const argv = (c: Container): string[] => {
            const program = Object.entries(imagePrograms).find(([image]) => c.image.includes(`/${image}:`));
            if (!program) throw new Error(`${namespace}/${name}: no program known for image ${c.image}`);
            const words = c.command ?? [program[1], ...(c.args ?? [])];
            const user = c.securityContext?.runAsUser;
            const group = c.securityContext?.runAsGroup ?? user;
            const asUser = user === undefined || user === 0 ? [] : ["setpriv", `--reuid=${user}`, `--regid=${group}`,
                ...(fsGroup !== undefined ? [`--groups=${fsGroup}`] : ["--clear-groups"]), "--no-new-privs", "--"];
            return [...asUser, ...words.map((w) => adapt(c, w))];
        };
        // Everything a container needs, before any starts: a missing Secret or image fails the whole start, to be tried again.
        const stateOf = async (spec: Container, init: boolean): Promise<ContainerState> => {
            // /dev/termination-log and other paths outside the volumes have no file of their own here.
            const messageFile = spec.terminationMessagePath && adapt(spec, spec.terminationMessagePath);
            return {
                spec, init, argv: argv(spec), env: await envOf(spec),
                messageFile: messageFile !== spec.terminationMessagePath ? messageFile : undefined,
                restartCount: 0, ready: !spec.readinessProbe,
            };
        };
        const initStates = await Promise.all(initContainers.map((c) => stateOf(c, true)));
        const states = await Promise.all(containers.map((c) => stateOf(c, false)));

        // For the kubectl wrapper: `kubectl exec` runs its command with the container's environment.
        const execPodDir = path.join(execDir, namespace, name);
        fs.mkdirSync(execPodDir, { recursive: true, mode: 0o700 });
        for (const s of states) {
            const lines = Object.entries(s.env).filter(([, v]) => v !== undefined).map(([k, v]) => `export ${k}=${shellQuote(String(v))}`);
            fs.writeFileSync(path.join(execPodDir, `${s.spec.name}.env`), `${lines.join("\n")}\n`, { mode: 0o600 });
        }

        const pod: Pod = {
            namespace, name, uid, initStates, states,
            get containers() { return [...this.initStates, ...this.states].flatMap((s) => (s.current ? [{ ...s.current, restartCount: s.restartCount }] : [])); },
            startTime: now(),
            transitions: new Map(),
            stopped: false,
            lastStatus: "",
            lost: new Set(),
        };
        pods.set(`${namespace}/${name}`, pod);

        // A container that exits is started again after a back-off (10 s, doubling, at most 60 s
        // here; the kubelet's goes to 5 minutes) if the restartPolicy says so: Always, or
        // OnFailure after a non-zero exit; an init container only ever after a failure. Else it
        // stays terminated, and `then` goes on.
        const launch = (state: ContainerState, earlier: string, then?: (exitCode: number) => void) => {
            const [command, ...args] = state.argv;
            const messageBefore = modified(state.messageFile);
            const child = home.start(command, args, state.env);
            const output = captureOutput(child);
            const startedAt = now();
            state.current = { name: state.spec.name, process: child, restartCount: state.restartCount, startedAt, log: () => earlier + output() };
            state.waiting = undefined;
            child.on("exit", (code, signal) => {
                const finishedAt = now();
                // Its last output may still be in the pipes: wait for them, a moment at most (a child it left behind holds them).
                const drained = new Promise<void>((resolve) => {
                    child.once("close", () => resolve());
                    setTimeout(resolve, 1_000).unref();
                });
                void drained.then(() => {
                    if (pod.stopped || state.current?.process !== child) return;
                    state.ready = !state.spec.readinessProbe;
                    const exitCode = code ?? 128 + (os.constants.signals[signal!] ?? 9);
                    const ended: Terminated = { exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt, finishedAt };
                    if (pod.lost.has(state.spec.name)) {
                        state.lastTerminated = ended;
                        state.waiting = "NodeLost";
                        return;
                    }
                    if (exitCode === 0 ? restartPolicy !== "Always" || state.init : restartPolicy === "Never") {
                        state.terminated = { ...ended, message: terminationMessage(state, exitCode, output(), messageBefore) };
                        then?.(exitCode);
                        return;
                    }
                    state.lastTerminated = ended;
                    const delay = Math.min(10_000 * 2 ** state.restartCount, 60_000);
                    const log = `${earlier}${output()}\n[node agent] ${state.spec.name} exited (${signal ?? code}); starting it again in ${delay / 1000} s\n`;
                    state.current = { ...state.current!, log: () => log };
                    state.waiting = "CrashLoopBackOff";
                    setTimeout(() => {
                        if (pod.stopped) return;
                        state.restartCount++;
                        launch(state, log, then);
                    }, delay).unref();
                });
            });
        };
        // Init containers one at a time, each to success, then the containers. A failed one
        // that is not run again (restartPolicy Never) fails the pod.
        pod.relaunch = (state) => {
            state.restartCount++;
            launch(state, `${state.current?.log() ?? ""}\n[node agent] ${state.spec.name} started again after the node came back\n`);
        };
        const run = (next: number) => {
            if (next < initStates.length) {
                launch(initStates[next], "", (exitCode) => exitCode === 0 && run(next + 1));
                return;
            }
            for (const state of states) {
                launch(state, "");
                if (state.spec.readinessProbe) void probeLoop(pod, state);
            }
        };
        run(0);
    };

    /**
     * A terminated container's message, as the kubelet makes it: what the container wrote to
     * its terminationMessagePath (4 KiB at most), else with FallbackToLogsOnError after a
     * failure the end of its output (80 lines, 2 KiB at most).
     */
    const terminationMessage = (state: ContainerState, exitCode: number, output: string, messageBefore: number | undefined): string | undefined => {
        // A file left by an earlier run is not this run's message.
        const written = state.messageFile !== undefined && modified(state.messageFile) !== messageBefore;
        const file = written ? fs.readFileSync(state.messageFile!).subarray(0, 4096).toString("utf8") : "";
        if (file) return file;
        if (state.spec.terminationMessagePolicy !== "FallbackToLogsOnError" || exitCode === 0) return undefined;
        const lines = output.split("\n");
        return Buffer.from(lines.slice(lines.at(-1) === "" ? -81 : -80).join("\n")).subarray(-2048).toString("utf8") || undefined;
    };

    // --- readiness: the probe the manifest gives, every periodSeconds ---
    const probeLoop = async (pod: Pod, state: ContainerState) => {
        const probe = state.spec.readinessProbe!;
        const port = typeof probe.httpGet.port === "number" ? probe.httpGet.port : state.spec.ports?.find((p) => p.name === probe.httpGet.port)?.containerPort;
        const url = `http://127.0.0.1:${port}${probe.httpGet.path}`;
        await sleep((probe.initialDelaySeconds ?? 0) * 1000);
        while (running && !pod.stopped && !state.terminated) {
            const ok = state.current !== undefined && state.waiting === undefined
                && (await exec(home, "curl", ["-sf", "-o", "/dev/null", "--max-time", "3", url], { timeoutMs: 10_000 })).status === 0;
            state.ready = ok;
            await sleep((probe.periodSeconds ?? 10) * 1000);
        }
    };

    // --- the status the API shows for a pod ---
    const started = (s: ContainerState) => Boolean(s.current && !s.waiting && !s.terminated);
    const initialized = (pod: Pod) => pod.initStates.every((s) => s.terminated?.exitCode === 0);
    const phaseOf = (pod: Pod) => {
        // Only with restartPolicy Never does a failed init container stay terminated.
        if (pod.initStates.some((s) => s.terminated && s.terminated.exitCode !== 0)) return "Failed";
        if (!initialized(pod)) return "Pending";
        if (pod.states.every((s) => s.terminated)) return pod.states.every((s) => s.terminated!.exitCode === 0) ? "Succeeded" : "Failed";
        return pod.states.every((s) => s.current && !s.waiting) || pod.states.some((s) => s.restartCount > 0 || s.terminated) ? "Running" : "Pending";
    };
    const containerStatus = (s: ContainerState) => ({
        name: s.spec.name,
        image: s.spec.image,
        imageID: s.spec.image,
        containerID: s.current ? `e2e://${s.current.process.pid}` : undefined,
        ready: s.init ? s.terminated?.exitCode === 0 : s.ready && started(s),
        started: started(s),
        restartCount: s.restartCount,
        state: s.terminated ? { terminated: s.terminated }
            : s.waiting ? { waiting: { reason: s.waiting } }
            : s.current ? { running: { startedAt: s.current.startedAt } }
            : { waiting: { reason: "PodInitializing" } },
        lastState: s.lastTerminated ? { terminated: s.lastTerminated } : {},
    });
    const statusOf = (pod: Pod) => {
        const allReady = pod.states.every((s) => s.ready && started(s));
        const condition = (type: string, ok: boolean) => {
            const status = ok ? "True" : "False";
            const seen = pod.transitions.get(type);
            if (!seen || seen.status !== status) pod.transitions.set(type, { status, time: now() });
            return { type, status, lastProbeTime: null, lastTransitionTime: pod.transitions.get(type)!.time };
        };
        return {
            status: {
                phase: phaseOf(pod),
                hostIP: options.nodeAddress,
                hostIPs: [{ ip: options.nodeAddress }],
                podIP: options.nodeAddress,
                podIPs: [{ ip: options.nodeAddress }],
                startTime: pod.startTime,
                conditions: [
                    condition("PodReadyToStartContainers", true),
                    condition("Initialized", initialized(pod)),
                    condition("ContainersReady", allReady),
                    condition("Ready", allReady),
                    condition("PodScheduled", true),
                ],
                initContainerStatuses: pod.initStates.map(containerStatus),
                containerStatuses: pod.states.map(containerStatus),
            },
        };
    };

    // --- a deleted pod: TERM, as the kubelet sends, then KILL after the grace period ---
    const stopPod = (pod: Pod, graceSeconds: number): Promise<void> => {
        if (pod.stopping) return pod.stopping;
        pod.stopped = true;
        const children = [...pod.initStates, ...pod.states].flatMap((s) => (s.current ? [s.current.process] : []));
        const alive = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
        for (const child of alive()) child.kill("SIGTERM");
        pod.stopping = (async () => {
            const deadline = Date.now() + Math.min(graceSeconds, 30) * 1000;
            while (alive().length && Date.now() < deadline) await sleep(100);
            for (const child of alive()) child.kill("SIGKILL");
            pods.delete(`${pod.namespace}/${pod.name}`);
            fs.rmSync(path.join(execDir, pod.namespace, pod.name), { recursive: true, force: true });
        })();
        return pod.stopping;
    };

    // --- the sync loop: start what is bound here, stop what is deleted, report status ---
    const starting = new Set<string>();
    /** Why a pod could not start yet (a Secret, ConfigMap or claim not there): noted once, tried again each sync. */
    const notStarted = new Map<string, string>();
    const syncPods = async () => {
        const list = await api.get(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeName}`)}`);
        const seen = new Set<string>();
        for (const manifest of list.items as any[]) {
            const key = `${manifest.metadata.namespace}/${manifest.metadata.name}`;
            seen.add(key);
            const pod = pods.get(key);
            if (manifest.metadata.deletionTimestamp) {
                if (starting.has(key)) continue;
                notStarted.delete(key);
                if (pod) await stopPod(pod, manifest.metadata.deletionGracePeriodSeconds ?? 30);
                await api.delete(`/api/v1/namespaces/${manifest.metadata.namespace}/pods/${manifest.metadata.name}`, {
                    apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0, preconditions: { uid: manifest.metadata.uid },
                });
                continue;
            }
            // A pod that has ended is not run again.
            if (!pod && !starting.has(key) && !["Succeeded", "Failed"].includes(manifest.status?.phase)) {
                starting.add(key);
                startPod(manifest).then(() => notStarted.delete(key), (err) => {
                    const message = (err as Error).message;
                    if (notStarted.get(key) !== message) note(`starting ${key} (tried again each sync): ${message}`);
                    notStarted.set(key, message);
                }).finally(() => starting.delete(key));
                continue;
            }
            if (pod) {
                const status = statusOf(pod);
                const text = JSON.stringify([status.status.initContainerStatuses, status.status.containerStatuses, status.status.conditions.map((c) => c.status), status.status.phase]);
                if (text !== pod.lastStatus) {
                    await api.patch(`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}/status`, status);
                    pod.lastStatus = text;
                }
            }
        }
        // Gone from the API without our delete (force-deleted): stop its processes.
        for (const [key, pod] of pods) if (!seen.has(key)) void stopPod(pod, 0);
    };

    // --- storage: a hostPath volume for each claim, as a provisioner would make it. Retained
    // when its claim goes (the test reads headscale's database after pulumi destroy) ---
    const provision = async () => {
        const claims = await options.adminApi.get("/api/v1/persistentvolumeclaims");
        for (const claim of claims.items as any[]) {
            if (claim.spec.volumeName || claim.metadata.deletionTimestamp) continue;
            const dir = path.join(options.root, "volumes", claim.metadata.uid);
            fs.mkdirSync(dir, { recursive: true, mode: 0o777 });
            fs.chmodSync(dir, 0o777);
            await options.adminApi.post("/api/v1/persistentvolumes", {
                apiVersion: "v1",
                kind: "PersistentVolume",
                metadata: { name: `e2e-${claim.metadata.uid}`, labels: { "e2e/provisioned": "true" } },
                spec: {
                    capacity: { storage: claim.spec.resources.requests.storage },
                    accessModes: claim.spec.accessModes,
                    persistentVolumeReclaimPolicy: "Retain",
                    ...(claim.spec.storageClassName ? { storageClassName: claim.spec.storageClassName } : {}),
                    hostPath: { path: dir, type: "Directory" },
                    claimRef: { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: claim.metadata.namespace, name: claim.metadata.name, uid: claim.metadata.uid },
                },
            }).catch((err) => {
                if (!/: 409 /.test((err as Error).message)) throw err;
            });
        }
    };

    const loop = async (everyMs: number, work: () => Promise<void>, what: string) => {
        while (running) {
            try {
                await work();
            } catch (err) {
                note(`${what}: ${(err as Error).message}`);
            }
            await sleep(everyMs);
        }
    };
    const loops = [
        loop(syncMs, syncPods, "pods"),
        loop(syncMs, provision, "volumes"),
        loop(leaseRenewMs, renewLease, "lease"),
        loop(60_000, () => api.patch(`/api/v1/nodes/${nodeName}/status`, nodeStatus()), "node status"),
    ];

    return {
        nodeName,
        pods,
        pod: (namespace, prefix) => [...pods.values()].find((p) => p.namespace === namespace && p.name.startsWith(prefix) && !p.stopped && !["Succeeded", "Failed"].includes(phaseOf(p))),
        execDir,
        bin,
        lose(namespace, podName, containers) {
            const pod = pods.get(`${namespace}/${podName}`);
            if (!pod) throw new Error(`no pod ${namespace}/${podName} on ${nodeName}`);
            for (const state of pod.states.filter((s) => !containers || containers.includes(s.spec.name))) {
                pod.lost.add(state.spec.name);
                if (state.current) signalTree(state.current.process.pid!, "SIGKILL");
            }
        },
        revive(namespace, podName) {
            const pod = pods.get(`${namespace}/${podName}`);
            if (!pod) throw new Error(`no pod ${namespace}/${podName} on ${nodeName}`);
            for (const state of pod.states.filter((s) => pod.lost.has(s.spec.name))) {
                pod.lost.delete(state.spec.name);
                if (state.waiting === "NodeLost") pod.relaunch!(state);
            }
        },
        signal(namespace, podName, container, signal) {
            const state = pods.get(`${namespace}/${podName}`)?.states.find((s) => s.spec.name === container);
            if (!state?.current) throw new Error(`no container ${container} running in ${namespace}/${podName} on ${nodeName}`);
            signalTree(state.current.process.pid!, signal);
        },
        notes: () => problems.join("\n"),
        async stop() {
            running = false;
            await Promise.all([...pods.values()].map((p) => stopPod(p, 5)));
            await Promise.race([Promise.all(loops), sleep(leaseRenewMs + 5_000)]);
            if (problems.length) console.log(`node agent notes:\n${problems.join("\n")}`);
        },
    };
}

/** A file's modification time, undefined if there is none. */
function modified(file: string | undefined): number | undefined {
    return file && fs.existsSync(file) ? fs.statSync(file).mtimeMs : undefined;
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
