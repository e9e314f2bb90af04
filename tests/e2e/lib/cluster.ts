// The harness's view of the cluster: kubectl and the headscale CLI as a user runs them, the
// pods and their containers' processes (from the host), headscale's routes, the routers.
import * as fs from "node:fs";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { routerInstances } from "../../../components/router";
import { dropAddressTable, mustRun, waitUntil } from "../../helpers/netns";
import { requireTool } from "../../helpers/tools";
import { E2e, lanRoute, namespace } from "../context";
import { exec, mustExec, Result } from "../exec";
import { KubeNode } from "../node/node";

/** kubectl as the user runs it, with the cluster's admin kubeconfig, in the home namespace. */
export function kubectl(e2e: E2e, ...args: string[]): Promise<Result> {
    return mustExec(e2e.world.home, requireTool("kubectl"), ["--kubeconfig", e2e.cluster.kubeconfig, "--context", e2e.cluster.context, ...args], { timeoutMs: 60_000 });
}

/** The same, a failure returned rather than thrown. */
export function tryKubectl(e2e: E2e, args: readonly string[], input?: string): Promise<Result> {
    return exec(e2e.world.home, requireTool("kubectl"), ["--kubeconfig", e2e.cluster.kubeconfig, "--context", e2e.cluster.context, ...args], { timeoutMs: 60_000, input });
}

/** The headscale CLI in the headscale pod, as the program's commands run it. */
export function headscaleCli(e2e: E2e, ...args: string[]): Promise<Result> {
    return kubectl(e2e, `--namespace=${namespace}`, "exec", "headscale-0", "-c", "headscale", "--", "headscale", ...args);
}

export async function pod(e2e: E2e, name: string): Promise<any> {
    return JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "pod", name, "--output=json")).stdout);
}

/** The pods a label selector picks, those being deleted left out. */
export async function podsOf(e2e: E2e, selector: string): Promise<any[]> {
    const list = JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "pods", `--selector=${selector}`, "--output=json")).stdout);
    return (list.items as any[]).filter((p) => !p.metadata.deletionTimestamp);
}

/** The one pod of the single router. */
export async function routerPod(e2e: E2e): Promise<any> {
    const pods = await podsOf(e2e, "app.kubernetes.io/name=subnet-router");
    if (pods.length !== 1) throw new Error(`expected one router pod, found ${pods.map((p) => p.metadata.name).join(", ")}`);
    return pods[0];
}

/** The restart count of each container of a pod, by name. */
export function restarts(p: any): Record<string, number> {
    return Object.fromEntries((p.status.containerStatuses ?? []).map((c: any) => [c.name, c.restartCount]));
}

/** Where headscale's volume is on its node (a local-path volume). */
export async function dataDir(e2e: E2e): Promise<string> {
    const volume = (await kubectl(e2e, `--namespace=${namespace}`, "get", "pvc", "data-headscale-0", "--output=jsonpath={.spec.volumeName}")).stdout.trim();
    return (await kubectl(e2e, "get", "pv", volume, "--output=jsonpath={.spec.local.path}")).stdout.trim();
}

/** The preauth keys in headscale's own database, read from its volume. */
export function preauthKeyExpirations(data: string): { id: number; expiration: string }[] {
    const db = new DatabaseSync(path.join(data, "db.sqlite"), { readOnly: true });
    try {
        return db.prepare("SELECT id, expiration FROM pre_auth_keys").all() as { id: number; expiration: string }[];
    } finally {
        db.close();
    }
}

/** headscale's pod address, in the cluster's pod range. */
export async function headscaleAddress(e2e: E2e): Promise<string> {
    return (await pod(e2e, "headscale-0")).status.podIP;
}

export async function routerAuthKey(e2e: E2e): Promise<string> {
    const data = JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "secret", "subnet-router-credentials", "--output=json")).stdout).data;
    return Buffer.from(data.TS_AUTHKEY, "base64").toString("utf8");
}

/** A container's log, as `kubectl logs` gives it. */
export async function containerLog(e2e: E2e, podName: string, container: string): Promise<string> {
    return (await tryKubectl(e2e, [`--namespace=${namespace}`, "logs", podName, "-c", container])).stdout;
}

/** A container's processes as the host sees them, its first process first, and the Node it runs on. */
export async function containerProcesses(e2e: E2e, podName: string, container: string): Promise<{ node: KubeNode; pids: number[] }> {
    const p = await pod(e2e, podName);
    const status = (p.status.containerStatuses as any[]).find((c) => c.name === container);
    if (!status?.containerID) throw new Error(`${podName} has no running ${container} container: ${JSON.stringify(status)}`);
    const node = e2e.node(p.spec.nodeName);
    return { node, pids: node.containerProcesses(status.containerID) };
}

/** A process's argv, or [] once it has gone. */
export function argv(pid: number): string[] {
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    } catch {
        return [];
    }
}

/** A Job's pods' termination messages: the end of a failed job's output. */
export async function jobMessage(e2e: E2e, job: string): Promise<string> {
    return (await kubectl(e2e, `--namespace=${namespace}`, "get", "pods", `--selector=batch.kubernetes.io/job-name=${job}`,
        "--output=jsonpath={range .items[*]}{.status.containerStatuses[*].state.terminated.message}{end}")).stdout;
}

/** Waits for a Job to succeed or fail for good, calling `meanwhile` each second. */
export async function finishedJob(e2e: E2e, job: string, timeoutMs: number, meanwhile: () => Promise<void> = async () => {}): Promise<{ succeeded: boolean; pods: number }> {
    let status: any = {};
    const finished = await waitUntil(async () => {
        await meanwhile();
        status = JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "job", job, "--output=json")).stdout).status;
        return (status.conditions ?? []).some((c: any) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
    }, timeoutMs, 1_000);
    if (!finished) throw new Error(`job ${job} did not finish in ${timeoutMs / 1000} s: ${JSON.stringify(status)} ${await jobMessage(e2e, job)}`);
    return { succeeded: status.succeeded === 1, pods: (status.succeeded ?? 0) + (status.failed ?? 0) };
}

// --- headscale's routes and the routers ---

/** Each node's routes as headscale lists them: approved, and the ones it serves as primary (`subnet_routes`). */
export async function routeTable(e2e: E2e): Promise<{ name: string; id: string; approved: string[]; primary: string[]; online: boolean }[]> {
    const nodes = JSON.parse((await headscaleCli(e2e, "nodes", "list", "--output", "json")).stdout) as any[];
    return nodes.map((n) => ({
        name: String(n.given_name ?? n.name),
        id: String(n.id),
        approved: (n.approved_routes ?? []).map(String),
        primary: (n.subnet_routes ?? []).map(String),
        online: n.online === true,
    }));
}

/** The router node that serves the LAN route now, by headscale. */
export async function primaryRouter(e2e: E2e): Promise<string | undefined> {
    return (await routeTable(e2e)).find((n) => n.primary.includes(lanRoute))?.name;
}

/** The two routers of the HA phase, named as the program names them. */
export const haRouters = routerInstances("home-router", 2);
export const routerDeployments = haRouters.map((r) => r.name);

/** A router's Deployment from its node name in headscale ("" if none is). */
export function deploymentOf(nodeNameInHeadscale: string): string {
    return haRouters.find((r) => r.nodeName === nodeNameInHeadscale)?.name ?? "";
}

/** A router's running pod: its name and its Node. */
export async function routerPodOf(e2e: E2e, deployment: string): Promise<{ name: string; node: KubeNode }> {
    const [p] = await podsOf(e2e, `app.kubernetes.io/name=${deployment}`);
    if (!p) throw new Error(`no pod of ${deployment}`);
    return { name: p.metadata.name, node: e2e.node(p.spec.nodeName) };
}

/** Which router's tunnel container last said that it holds the VPS's port. */
export async function tunnelHolder(e2e: E2e, deployments: readonly string[]): Promise<string | undefined> {
    for (const d of deployments) {
        const log = await containerLog(e2e, (await routerPodOf(e2e, d)).name, "tunnel");
        const last = log.split("\n").filter((l) => /^overlay: /.test(l)).at(-1) ?? "";
        if (/^overlay: this router holds the tunnel/.test(last)) return d;
    }
    return undefined;
}

/** Signals every process of a pod's containers (or of these), as the host sends them. */
export async function signalContainers(e2e: E2e, podName: string, signal: NodeJS.Signals, containers: readonly string[]): Promise<KubeNode> {
    let node: KubeNode | undefined;
    for (const container of containers) {
        const found = await containerProcesses(e2e, podName, container);
        node = found.node;
        for (const pid of found.pids) {
            try {
                process.kill(pid, signal);
            } catch {
                // it ended meanwhile
            }
        }
    }
    return node!;
}

/**
 * Cuts a pod off the network on its Node, as a lost node is cut off: every packet from or to
 * its address dropped in the Node's namespace (isolated), or let through again.
 */
export async function isolatePod(e2e: E2e, podName: string, isolated: boolean): Promise<void> {
    const p = await pod(e2e, podName);
    const ns = e2e.netnsOf(p.spec.nodeName);
    const table = `e2e_lost_${podName.replace(/[^a-z0-9]/g, "_")}`;
    if (!isolated) {
        mustRun(ns, "nft", ["delete", "table", "inet", table]);
        return;
    }
    mustRun(ns, "nft", ["-f", "-"], dropAddressTable(table, p.status.podIP, ["forward", "input", "output"]));
}

/** Kills every process of a pod's containers, and waits until they have gone. */
export async function killContainers(e2e: E2e, podName: string, containers: readonly string[]): Promise<void> {
    const pids = (await Promise.all(containers.map((c) => containerProcesses(e2e, podName, c)))).flatMap((c) => c.pids);
    for (const pid of pids) {
        try {
            process.kill(pid, "SIGKILL");
        } catch {
            // it ended meanwhile
        }
    }
    await waitUntil(() => pids.every((pid) => !fs.existsSync(`/proc/${pid}`)), 10_000, 20);
}
