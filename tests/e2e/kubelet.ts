// A Node of the test cluster, whose containers are plain processes in the "home" namespace.
// It does a kubelet's part and nothing of Pulumi's: it registers its Node and keeps its Lease,
// runs the Pods the scheduler binds to it (each container with the image's program and the
// args, env and user its manifest gives, its volumes as directories filled from the API),
// reports their real status (phase, container states, restart counts, Ready from the
// readinessProbe), restarts containers that exit, and stops a Pod's processes when the Pod is
// deleted. It also provisions a volume for each claim, as a cluster's storage provisioner
// would (and retains it). Only paths change: a mountPath becomes a directory here, and
// tailscale keeps its state in a directory named after its TS_KUBE_SECRET, not in that Secret.
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { containerPaths } from "../../components/headscale/config";
import { shellQuote } from "../../components/shell";
import { captureOutput, Netns } from "../helpers/netns";
import { toolBin } from "../helpers/tools";
import { exec } from "./exec";
import { KubeApi } from "./kubeApi";

/** Each image's entry point, here (a container's `command`, when it has one, replaces it). */
const imagePrograms: Record<string, string> = { headscale: "headscale", tailscale: "containerboot", autossh: "autossh" };

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
}

interface Volume {
    name: string;
    configMap?: { name: string; items?: { key: string; path: string }[]; defaultMode?: number };
    secret?: { secretName: string; items?: { key: string; path: string }[]; defaultMode?: number };
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
    /** The pods running here now, by "namespace/name". */
    readonly pods: ReadonlyMap<string, RunningPod>;
    /** The running pod of a workload: the first whose name starts with `prefix`. */
    pod(namespace: string, prefix: string): RunningPod | undefined;
    /** Where the kubectl wrapper finds a container's environment: <dir>/<namespace>/<pod>/<container>.env */
    readonly execDir: string;
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
    readonly nodeName: string;
    /** The pods' address: they share the home namespace's network. */
    readonly nodeAddress: string;
    /** Extra environment for every container (the test CA). */
    readonly extraEnv: NodeJS.ProcessEnv;
}

interface ContainerState {
    readonly spec: Container;
    current?: RunningContainer & { startedAt: string };
    restartCount: number;
    ready: boolean;
    waiting?: string;
    lastTerminated?: { exitCode: number; reason: string; startedAt: string; finishedAt: string };
}

interface Pod extends RunningPod {
    readonly states: ContainerState[];
    readonly startTime: string;
    readonly transitions: Map<string, { status: string; time: string }>;
    stopped: boolean;
    stopping?: Promise<void>;
    lastStatus: string;
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
    const prepareVolumes = async (pod: any, podDir: string): Promise<Map<string, string>> => {
        const ns = pod.metadata.namespace;
        const fsGroup: number | undefined = pod.spec.securityContext?.fsGroup;
        const dirs = new Map<string, string>();
        for (const volume of (pod.spec.volumes ?? []) as Volume[]) {
            if (volume.persistentVolumeClaim) {
                const claim = await api.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${volume.persistentVolumeClaim.claimName}`);
                const pv = await api.get(`/api/v1/persistentvolumes/${claim.spec.volumeName}`);
                dirs.set(volume.name, pv.spec.hostPath.path);
                continue;
            }
            const dir = path.join(podDir, "volumes", volume.name);
            fs.mkdirSync(dir, { recursive: true });
            if (fsGroup !== undefined) fs.chownSync(dir, 0, fsGroup);
            let files: Record<string, string> | undefined;
            let items: { key: string; path: string }[] | undefined;
            let mode = 0o644;
            if (volume.configMap) {
                files = (await api.get(`/api/v1/namespaces/${ns}/configmaps/${volume.configMap.name}`)).data ?? {};
                items = volume.configMap.items;
                mode = volume.configMap.defaultMode ?? mode;
            } else if (volume.secret) {
                files = decode((await api.get(`/api/v1/namespaces/${ns}/secrets/${volume.secret.secretName}`)).data);
                items = volume.secret.items;
                mode = volume.secret.defaultMode ?? mode;
            } else if (volume.projected) {
                files = { namespace: ns };
            }
            fs.chmodSync(dir, files ? 0o755 : 0o2775);
            for (const item of items ?? Object.keys(files ?? {}).map((key) => ({ key, path: key }))) {
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
        const secrets = new Map<string, Record<string, string>>();
        const secretValue = async (ref: { name: string; key: string }) => {
            if (!secrets.has(ref.name)) secrets.set(ref.name, decode((await api.get(`/api/v1/namespaces/${namespace}/secrets/${ref.name}`)).data));
            return secrets.get(ref.name)![ref.key];
        };

        const mounts = (c: Container) => (c.volumeMounts ?? []).map((m) => ({ from: m.mountPath, to: volumeDirs.get(m.name)! })).filter((m) => m.to);
        // One pass, longest mount path first, whole path components only.
        const adapt = (c: Container, text: string) => {
            const list = mounts(c).sort((a, b) => b.from.length - a.from.length);
            if (!list.length) return text;
            const pattern = new RegExp(`(${list.map((m) => m.from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})(?![\\w.-])`, "g");
            return text.replace(pattern, (from) => list.find((m) => m.from === from)!.to);
        };
        const containers: Container[] = manifest.spec.containers;
        // Config files in the pod's own volumes name container paths; they name these directories here.
        for (const c of containers) {
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
                else out[e.name] = e.value;
            }
            if (c.image.includes("/tailscale:") && out.TS_KUBE_SECRET) {
                // State in a directory named after the Secret, kept across pods as the Secret is.
                out.TS_STATE_DIR = path.join(options.root, "state", namespace, out.TS_KUBE_SECRET);
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
            const asUser = user === undefined ? [] : ["setpriv", `--reuid=${user}`, `--regid=${group}`,
                ...(fsGroup !== undefined ? [`--groups=${fsGroup}`] : ["--clear-groups"]), "--no-new-privs", "--"];
            return [...asUser, ...words.map((w) => adapt(c, w))];
        };

        const envs = await Promise.all(containers.map(envOf));
        // For the kubectl wrapper: `kubectl exec` runs its command with the container's environment.
        const execPodDir = path.join(execDir, namespace, name);
        fs.mkdirSync(execPodDir, { recursive: true, mode: 0o700 });
        containers.forEach((c, i) => {
            const lines = Object.entries(envs[i]).filter(([, v]) => v !== undefined).map(([k, v]) => `export ${k}=${shellQuote(String(v))}`);
            fs.writeFileSync(path.join(execPodDir, `${c.name}.env`), `${lines.join("\n")}\n`, { mode: 0o600 });
        });

        const pod: Pod = {
            namespace, name, uid,
            states: containers.map((spec) => ({ spec, restartCount: 0, ready: !spec.readinessProbe })),
            get containers() { return this.states.flatMap((s) => (s.current ? [{ ...s.current, restartCount: s.restartCount }] : [])); },
            startTime: now(),
            transitions: new Map(),
            stopped: false,
            lastStatus: "",
        };
        pods.set(`${namespace}/${name}`, pod);

        // restartPolicy Always: a container that exits is started again after a back-off
        // (10 s, doubling, at most 60 s here; the kubelet's goes to 5 minutes).
        const launch = (state: ContainerState, index: number, earlier: string) => {
            const [command, ...args] = argv(state.spec);
            const child = home.start(command, args, envs[index]);
            const output = captureOutput(child);
            const startedAt = now();
            state.current = { name: state.spec.name, process: child, restartCount: state.restartCount, startedAt, log: () => earlier + output() };
            state.waiting = undefined;
            child.on("exit", (code, signal) => {
                if (pod.stopped || state.current?.process !== child) return;
                state.ready = !state.spec.readinessProbe;
                state.lastTerminated = { exitCode: code ?? 137, reason: signal ? `Signal ${signal}` : "Error", startedAt, finishedAt: now() };
                const delay = Math.min(10_000 * 2 ** state.restartCount, 60_000);
                const log = `${earlier}${output()}\n[node agent] ${state.spec.name} exited (${signal ?? code}); starting it again in ${delay / 1000} s\n`;
                state.current = { ...state.current!, log: () => log };
                state.waiting = "CrashLoopBackOff";
                setTimeout(() => {
                    if (pod.stopped) return;
                    state.restartCount++;
                    launch(state, index, log);
                }, delay).unref();
            });
        };
        pod.states.forEach((s, i) => launch(s, i, ""));
        for (const state of pod.states) if (state.spec.readinessProbe) void probeLoop(pod, state);
    };

    // --- readiness: the probe the manifest gives, every periodSeconds ---
    const probeLoop = async (pod: Pod, state: ContainerState) => {
        const probe = state.spec.readinessProbe!;
        const port = typeof probe.httpGet.port === "number" ? probe.httpGet.port : state.spec.ports?.find((p) => p.name === probe.httpGet.port)?.containerPort;
        const url = `http://127.0.0.1:${port}${probe.httpGet.path}`;
        await sleep((probe.initialDelaySeconds ?? 0) * 1000);
        while (running && !pod.stopped) {
            const ok = state.current !== undefined && state.waiting === undefined
                && (await exec(home, "curl", ["-sf", "-o", "/dev/null", "--max-time", "3", url], { timeoutMs: 10_000 })).status === 0;
            state.ready = ok;
            await sleep((probe.periodSeconds ?? 10) * 1000);
        }
    };

    // --- the status the API shows for a pod ---
    const statusOf = (pod: Pod) => {
        const allRunning = pod.states.every((s) => s.current && !s.waiting);
        const allReady = pod.states.every((s) => s.ready && s.current && !s.waiting);
        const condition = (type: string, ok: boolean) => {
            const status = ok ? "True" : "False";
            const seen = pod.transitions.get(type);
            if (!seen || seen.status !== status) pod.transitions.set(type, { status, time: now() });
            return { type, status, lastProbeTime: null, lastTransitionTime: pod.transitions.get(type)!.time };
        };
        return {
            status: {
                phase: allRunning || pod.states.some((s) => s.restartCount > 0) ? "Running" : "Pending",
                hostIP: options.nodeAddress,
                hostIPs: [{ ip: options.nodeAddress }],
                podIP: options.nodeAddress,
                podIPs: [{ ip: options.nodeAddress }],
                startTime: pod.startTime,
                conditions: [
                    condition("PodReadyToStartContainers", true),
                    condition("Initialized", true),
                    condition("ContainersReady", allReady),
                    condition("Ready", allReady),
                    condition("PodScheduled", true),
                ],
                containerStatuses: pod.states.map((s) => ({
                    name: s.spec.name,
                    image: s.spec.image,
                    imageID: s.spec.image,
                    containerID: s.current ? `e2e://${s.current.process.pid}` : undefined,
                    ready: Boolean(s.ready && s.current && !s.waiting),
                    started: Boolean(s.current && !s.waiting),
                    restartCount: s.restartCount,
                    state: s.waiting ? { waiting: { reason: s.waiting } } : { running: { startedAt: s.current?.startedAt } },
                    lastState: s.lastTerminated ? { terminated: s.lastTerminated } : {},
                })),
            },
        };
    };

    // --- a deleted pod: TERM, as the kubelet sends, then KILL after the grace period ---
    const stopPod = (pod: Pod, graceSeconds: number): Promise<void> => {
        if (pod.stopping) return pod.stopping;
        pod.stopped = true;
        const children = pod.states.flatMap((s) => (s.current ? [s.current.process] : []));
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
    const syncPods = async () => {
        const list = await api.get(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${nodeName}`)}`);
        const seen = new Set<string>();
        for (const manifest of list.items as any[]) {
            const key = `${manifest.metadata.namespace}/${manifest.metadata.name}`;
            seen.add(key);
            const pod = pods.get(key);
            if (manifest.metadata.deletionTimestamp) {
                if (starting.has(key)) continue;
                if (pod) await stopPod(pod, manifest.metadata.deletionGracePeriodSeconds ?? 30);
                await api.delete(`/api/v1/namespaces/${manifest.metadata.namespace}/pods/${manifest.metadata.name}`, {
                    apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0, preconditions: { uid: manifest.metadata.uid },
                });
                continue;
            }
            if (!pod && !starting.has(key)) {
                starting.add(key);
                startPod(manifest).catch((err) => note(`starting ${key}: ${(err as Error).message}`)).finally(() => starting.delete(key));
                continue;
            }
            if (pod) {
                const status = statusOf(pod);
                const text = JSON.stringify(status.status.containerStatuses) + JSON.stringify(status.status.conditions.map((c) => c.status)) + status.status.phase;
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
        pod: (namespace, prefix) => [...pods.values()].find((p) => p.namespace === namespace && p.name.startsWith(prefix) && !p.stopped),
        execDir,
        bin,
        notes: () => problems.join("\n"),
        async stop() {
            running = false;
            await Promise.all([...pods.values()].map((p) => stopPod(p, 5)));
            await Promise.race([Promise.all(loops), sleep(leaseRenewMs + 5_000)]);
            if (problems.length) console.log(`node agent notes:\n${problems.join("\n")}`);
        },
    };
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
