// Runs the program's pods as plain processes in the home namespace: each container with the
// image's program, the args, env and user its manifest gives it, its volumes as directories
// (a Secret's or ConfigMap's files written as the kubelet would), and a readiness wait that
// does what its readinessProbe does. Only paths change: a mountPath becomes a directory here,
// and tailscale keeps its state in a directory instead of a Kubernetes Secret.
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { captureOutput, Netns, waitUntil } from "../helpers/netns";
import { containerPaths } from "../../components/headscale/config";
import { toolBin } from "../helpers/tools";
import { exec } from "./exec";
import { ClusterObjects, Kubelet } from "./engine";

/** Each image's entry point, here (a container's `command`, when it has one, replaces it). */
const imagePrograms: Record<string, string> = { headscale: "headscale", tailscale: "containerboot", autossh: "autossh" };

interface Container {
    name: string;
    image: string;
    command?: string[];
    args?: string[];
    env?: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
    ports?: { name: string; containerPort: number }[];
    readinessProbe?: { httpGet: { path: string; port: string } };
    securityContext?: { runAsUser?: number; runAsGroup?: number };
    volumeMounts?: { name: string; mountPath: string }[];
}

export interface RunningContainer {
    readonly name: string;
    readonly process: ChildProcess;
    log(): string;
}

export interface Pod {
    readonly name: string;
    readonly containers: RunningContainer[];
    /** Stops the pod's processes and starts them again; volumes are kept. */
    restart(): Promise<void>;
    stop(): void;
}

export interface HomeKubelet extends Kubelet {
    readonly pods: Map<string, Pod>;
    /**
     * The environment for commands that use kubectl: PATH with the kubectl stand-in (which
     * runs the rest of `kubectl exec ... --` here) and headscale's config as mounted here.
     */
    kubectlEnv(): NodeJS.ProcessEnv;
}

export function createKubelet(home: Netns, root: string, extraEnv: NodeJS.ProcessEnv): HomeKubelet {
    const pods = new Map<string, Pod>();
    const bin = toolBin(path.join(root, "bin"), ["headscale", "tailscale", "tailscaled", "containerboot"]);
    // Containers run as their own users: every directory on the way to a volume must let them pass.
    for (let dir = root; dir !== path.dirname(dir); dir = path.dirname(dir)) fs.chmodSync(dir, fs.statSync(dir).mode | 0o111);
    let headscaleConfig = "";

    const run = async (inputs: Record<string, any>, objects: ClusterObjects) => {
        const name: string = inputs.metadata.name;
        const podSpec = inputs.spec.template.spec;
        const podDir = path.join(root, name);
        fs.mkdirSync(path.join(podDir, "volumes"), { recursive: true, mode: 0o711 });
        const fsGroup: number | undefined = podSpec.securityContext?.fsGroup;
        // Volumes: directories, with a ConfigMap's or Secret's files in them.
        const volumeDirs = new Map<string, string>();
        const claims: { metadata: { name: string } }[] = inputs.spec.volumeClaimTemplates ?? [];
        for (const volume of [...(podSpec.volumes ?? []), ...claims.map((c) => ({ name: c.metadata.name }))]) {
            const dir = path.join(podDir, "volumes", volume.name);
            fs.mkdirSync(dir, { recursive: true });
            if (fsGroup !== undefined) fs.chownSync(dir, 0, fsGroup);
            fs.chmodSync(dir, volume.configMap || volume.secret ? 0o755 : 0o2775);
            const source = volume.configMap ? objects.configMaps.get(volume.configMap.name) : volume.secret ? objects.secrets.get(volume.secret.secretName) : undefined;
            if ((volume.configMap || volume.secret) && !source) throw new Error(`${name}: volume ${volume.name} names an object the program did not create`);
            if (source) {
                const items: { key: string; path: string }[] = volume.secret?.items ?? Object.keys(source).map((key) => ({ key, path: key }));
                for (const item of items) {
                    const file = path.join(dir, item.path);
                    fs.writeFileSync(file, source[item.key], { mode: volume.secret?.defaultMode ?? 0o644 });
                    if (fsGroup !== undefined) fs.chownSync(file, 0, fsGroup);
                }
            }
            volumeDirs.set(volume.name, dir);
        }

        const containers: Container[] = podSpec.containers;
        const mounts = (c: Container) => (c.volumeMounts ?? []).map((m) => ({ from: m.mountPath, to: volumeDirs.get(m.name)! }));
        // One pass, longest mount path first, whole path components only.
        const adapt = (c: Container, text: string) => {
            const list = mounts(c).sort((a, b) => b.from.length - a.from.length);
            if (!list.length) return text;
            const pattern = new RegExp(`(${list.map((m) => m.from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})(?![\\w.-])`, "g");
            return text.replace(pattern, (from) => list.find((m) => m.from === from)!.to);
        };
        // Files in the pod's volumes name container paths; they name these directories here.
        for (const c of containers) {
            for (const m of mounts(c)) {
                for (const file of fs.readdirSync(m.to)) {
                    const p = path.join(m.to, file);
                    if (fs.statSync(p).isFile() && /\.ya?ml$/.test(file)) fs.writeFileSync(p, adapt(c, fs.readFileSync(p, "utf8")));
                }
            }
        }

        const env = (c: Container): NodeJS.ProcessEnv => {
            const out: NodeJS.ProcessEnv = { PATH: `${bin}:${process.env.PATH}`, ...extraEnv };
            for (const e of c.env ?? []) {
                out[e.name] = e.valueFrom ? objects.secrets.get(e.valueFrom.secretKeyRef.name)?.[e.valueFrom.secretKeyRef.key] : e.value;
            }
            if (c.image.includes("/tailscale:")) {
                // State in a directory of the pod's instead of the TS_KUBE_SECRET Secret.
                delete out.TS_KUBE_SECRET;
                out.TS_STATE_DIR = path.join(podDir, "tailscale-state");
                out.TS_SOCKET = path.join(podDir, "tailscaled.sock");
                fs.mkdirSync(out.TS_STATE_DIR, { recursive: true });
            }
            if (c.image.includes("/headscale:")) {
                // Where the image's headscale reads its config by default, as mounted here.
                headscaleConfig = adapt(c, path.join(containerPaths.config, "config.yaml"));
                out.HEADSCALE_CONFIG = headscaleConfig;
            }
            return out;
        };
        const argv = (c: Container): string[] => {
            const program = Object.entries(imagePrograms).find(([image]) => c.image.includes(`/${image}:`));
            if (!program) throw new Error(`${name}: no program known for image ${c.image}`);
            const words = c.command ?? [program[1], ...(c.args ?? [])];
            const user = c.securityContext?.runAsUser;
            const group = c.securityContext?.runAsGroup ?? user;
            const asUser = user === undefined ? [] : ["setpriv", `--reuid=${user}`, `--regid=${group}`,
                ...(fsGroup !== undefined ? [`--groups=${fsGroup}`] : ["--clear-groups"]), "--no-new-privs", "--"];
            return [...asUser, ...words.map((w) => adapt(c, w))];
        };

        // restartPolicy Always: a container that exits is started again after a back-off
        // (10 s, doubling, at most 60 s here; the kubelet's goes to 5 minutes).
        let running: RunningContainer[] = [];
        let stopped = false;
        const launch = (c: Container, index: number, restarts: number, earlier: string) => {
            const [command, ...args] = argv(c);
            const child = home.start(command, args, env(c));
            const output = captureOutput(child);
            const log = () => earlier + output();
            running[index] = { name: c.name, process: child, log };
            child.on("exit", (code, signal) => {
                if (stopped || running[index]?.process !== child) return;
                const delay = Math.min(10_000 * 2 ** restarts, 60_000);
                const note = `\n[kubelet stand-in] ${c.name} exited (${signal ?? code}); starting it again in ${delay / 1000} s\n`;
                running[index] = { name: c.name, process: child, log: () => log() + note };
                setTimeout(() => stopped || launch(c, index, restarts + 1, log() + note), delay).unref();
            });
        };
        const start = async () => {
            stopped = false;
            running = [];
            containers.forEach((c, i) => launch(c, i, 0, ""));
            for (const c of containers) {
                if (!c.readinessProbe) continue;
                const port = c.ports?.find((p) => p.name === c.readinessProbe!.httpGet.port)?.containerPort;
                const url = `http://127.0.0.1:${port}${c.readinessProbe.httpGet.path}`;
                const ready = await waitUntil(async () => (await exec(home, "curl", ["-sf", "-o", "/dev/null", "--max-time", "3", url])).status === 0, 420_000, 1_000);
                if (!ready) {
                    const logs = running.map((r) => `--- ${r.name}\n${r.log().slice(-4000)}`).join("\n");
                    throw new Error(`${name}: container ${c.name} not ready (${url}) within 420 s\n${logs}`);
                }
            }
        };
        // TERM, as the kubelet sends: containerboot takes its tailscaled along, autossh its ssh.
        const stop = () => {
            stopped = true;
            for (const r of running) r.process.kill("SIGTERM");
        };
        await start();
        pods.set(name, {
            name,
            get containers() { return running; },
            async restart() {
                const old = running.map((r) => r.process);
                stop();
                await waitUntil(() => old.every((p) => p.exitCode !== null || p.signalCode !== null), 10_000);
                await start();
            },
            stop,
        });
    };

    return { run, pods, kubectlEnv: () => ({ PATH: `${bin}:${process.env.PATH}`, HEADSCALE_CONFIG: headscaleConfig }) };
}
