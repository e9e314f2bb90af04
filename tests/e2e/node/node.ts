// A real Kubernetes Node for the end-to-end test, as k3s's agent runs one: containerd and runc
// (Debian's packages) with the bridge, host-local, loopback and portmap CNI plugins, kubelet
// and kube-proxy v1.34.4, and kube-router's network-policy controller. Its pods run the
// images of images.ts, each as its image defines it, in network namespaces of their own.
//
// Where it runs: every daemon in one of the test's network namespaces (home, home2) and in a
// mount namespace of the node's own, where /var and /run are fresh tmpfs mounts (the
// kubelet's hard-coded /var/lib/kubelet/device-plugins, libcni's /var/lib/cni, the
// /var/log/containers links, iptables' /run/xtables.lock). Everything else the node writes is
// under its directory: containerd's root and state, runc's state, the kubelet's root, pod logs.
// Host state that no namespace holds: the containers' cgroups (/sys/fs/cgroup/<c>/k8s.io/<id>),
// removed by stop(), pass or fail.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Netns, processTree, signalTree, waitUntil } from "../../helpers/netns";
import { requireTool } from "../../helpers/tools";
import { ControlPlane } from "../controlPlane";
import { exec, mustExec } from "../exec";
import { ImageDefinition } from "./images";

export interface NodeOptions {
    readonly name: string;
    /** The network namespace the node's daemons run in; its address is the node's. */
    readonly ns: Netns;
    readonly address: string;
    /** This node's pods' range, within the cluster's. */
    readonly podCidr: string;
    readonly clusterCidr: string;
    readonly serviceCidr: string;
    readonly clusterDns: string;
    readonly dir: string;
    readonly cluster: ControlPlane;
    /** Each image with its OCI archive. */
    readonly images: readonly { readonly image: ImageDefinition; readonly archive: string }[];
}

export interface KubeNode {
    readonly name: string;
    readonly address: string;
    /** The host PIDs of a container's processes, its first process first (containerStatuses' containerID). */
    containerProcesses(containerId: string): number[];
    /** The end of each daemon's log (or of one daemon's), for failure messages. */
    logs(daemon?: string): string;
    /** Stops every process of the node and its pods, and removes their cgroups. */
    stop(): Promise<void>;
}

const pauseImage = "registry.k8s.io/pause:3.10.1";
const logTailBytes = 3000;

interface Daemon {
    readonly name: string;
    readonly child: ChildProcess;
    readonly logFile: string;
}

/**
 * The process that holds the node's mount namespace: every daemon enters it with nsenter. It
 * enters the network namespace with nsenter rather than `ip netns exec`, which would mount a
 * sysfs of its own over /sys and with it hide the cgroup hierarchies the kubelet needs.
 */
function startHolder(ns: Netns, dir: string): { child: ChildProcess; pid: () => number } {
    const ready = path.join(dir, "holder.ready");
    // A private mount namespace (unshare's) with fresh /var and /run, shared within itself
    // (mount propagation between the kubelet's mounts and the containers'), and the network
    // namespace's hosts and resolv.conf over /etc's, as `ip netns exec` does: containerd
    // resolves a registry's name with no DNS server but loopback's. Then wait.
    const script = [
        "set -e",
        `mount --bind ${path.join(ns.etc, "hosts")} /etc/hosts`,
        `mount --bind ${path.join(ns.etc, "resolv.conf")} /etc/resolv.conf`,
        "mount -t tmpfs -o mode=0755 node-var /var",
        "mkdir -p /var/lib /var/log /var/tmp && chmod 1777 /var/tmp",
        "mount -t tmpfs -o mode=0755 node-run /run",
        "mount --make-rshared /",
        `echo $$ > ${ready}`,
        "exec sleep infinity",
    ].join("\n");
    const child = spawn(requireTool("nsenter"), [`--net=/run/netns/${ns.name}`, "--", "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
        { stdio: ["ignore", "ignore", "pipe"] });
    let output = "";
    child.stderr?.on("data", (d) => (output += d));
    return {
        child,
        pid: () => {
            if (!fs.existsSync(ready)) throw new Error(`the node's mount namespace did not start: ${output}`);
            return Number(fs.readFileSync(ready, "utf8").trim());
        },
    };
}

/** The last bytes of a file. */
function tail(file: string): string {
    if (!fs.existsSync(file)) return "";
    const text = fs.readFileSync(file);
    return text.subarray(Math.max(0, text.length - logTailBytes)).toString("utf8");
}

export async function startNode(options: NodeOptions): Promise<KubeNode> {
    const { name, dir, ns, cluster } = options;
    const programs = Object.fromEntries(["containerd", "containerd-shim-runc-v2", "runc", "ctr", "kubelet", "kube-proxy", "kube-router", "ipset", "iptables", "iptables-save", "nsenter", "unshare"]
        .map((p) => [p, requireTool(p)]));
    if (!fs.existsSync("/usr/lib/cni/bridge")) throw new Error("the CNI plugins are not installed: apt-get install containernetworking-plugins");
    fs.mkdirSync(dir, { recursive: true });
    const file = (...parts: string[]) => path.join(dir, ...parts);
    const holder = startHolder(ns, dir);
    const daemons: Daemon[] = [];
    const containerIds = new Set<string>();
    let holderPid = 0;
    const inNode = (program: string, args: readonly string[]) => ["-t", String(holderPid), "-m", "-n", "--", program, ...args];
    const socket = file("containerd", "containerd.sock");
    /** nsenter's arguments for ctr in the node, on its containerd's CRI namespace. */
    const ctr = (...args: string[]) => inNode(programs.ctr, ["--address", socket, "--namespace", "k8s.io", ...args]);

    const start = (daemon: string, program: string, args: readonly string[]) => {
        const logFile = file("logs", `${daemon}.log`);
        fs.mkdirSync(path.dirname(logFile), { recursive: true });
        const fd = fs.openSync(logFile, "a");
        const child = spawn(programs.nsenter, inNode(program, args), { stdio: ["ignore", "pipe", "pipe"] });
        child.stdout?.on("data", (d) => fs.writeSync(fd, d));
        child.stderr?.on("data", (d) => fs.writeSync(fd, d));
        child.on("close", (code, signal) => {
            fs.writeSync(fd, `\n[${daemon} exited: ${signal ?? code}]\n`);
            fs.closeSync(fd);
        });
        daemons.push({ name: daemon, child, logFile });
        return child;
    };
    const logs = (only?: string) => daemons.filter((d) => !only || d.name === only).map((d) => `--- ${name}: ${d.name} ---\n${tail(d.logFile)}`).join("\n");
    const nodeExec = (program: string, args: readonly string[]) => mustExec(undefined, programs.nsenter, inNode(program, args), { timeoutMs: 120_000 });

    const stop = async () => {
        // Every process in the node's mount namespace, and everything under them (the
        // containers, in mount namespaces of their own, are the shims' children).
        let mountNs: string | undefined;
        try {
            mountNs = holderPid ? fs.readlinkSync(`/proc/${holderPid}/ns/mnt`) : undefined;
        } catch {
            // the holder is gone: so is its namespace, once its last process is
        }
        if (mountNs) {
            const list = await exec(undefined, programs.nsenter, ctr("containers", "ls", "--quiet"), { timeoutMs: 10_000 });
            for (const id of list.stdout.split("\n").filter(Boolean)) containerIds.add(id);
        }
        for (const d of daemons) d.child.kill("SIGKILL");
        for (let round = 0; round < 5 && mountNs; round++) {
            const members = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
                try {
                    return fs.readlinkSync(`/proc/${p}/ns/mnt`) === mountNs;
                } catch {
                    return false;
                }
            }).map(Number);
            if (!members.length) break;
            for (const pid of members) signalTree(pid, "SIGKILL");
            await new Promise((resolve) => setTimeout(resolve, 200));
        }
        holder.child.kill("SIGKILL");
        removeCgroups(containerIds);
    };

    try {
        await waitUntil(() => fs.existsSync(file("holder.ready")), 10_000, 50);
        holderPid = holder.pid();

        // --- containerd, its own root, state and socket; CNI from the node's directory ---
        const containerdDir = file("containerd");
        fs.mkdirSync(file("cni", "net.d"), { recursive: true });
        fs.writeFileSync(file("cni", "net.d", "10-bridge.conflist"), JSON.stringify(cniConfig(options, file("cni", "ipam")), null, 2));
        fs.writeFileSync(file("containerd.toml"), containerdConfig(containerdDir, file("cni", "net.d")));
        start("containerd", programs.containerd, ["--config", file("containerd.toml")]);
        if (!(await waitUntil(async () => fs.existsSync(socket) && (await exec(undefined, programs.nsenter, ctr("version"), { timeoutMs: 5000 })).status === 0, 30_000, 200))) {
            throw new Error(`containerd did not start on ${name}:\n${logs()}`);
        }
        // --- the images, under every reference pods name them by ---
        const ctrImages = (...args: string[]) => mustExec(undefined, programs.nsenter, ctr("images", ...args), { timeoutMs: 120_000 });
        for (const { image, archive } of options.images) {
            // The archive's one image arrives as e2e.invalid/<name>:image, is named as pods name
            // it, then loses its import name (CRI would otherwise resolve the image by that one).
            const imported = `e2e.invalid/${image.name}:image`;
            await ctrImages("import", "--base-name", `e2e.invalid/${image.name}`, archive);
            for (const reference of image.references) {
                for (const ref of containerdNames(reference)) await ctrImages("tag", "--force", imported, ref);
            }
            await ctrImages("rm", imported);
        }

        // --- the pods' network: forwarding, and pods' traffic to the world masqueraded, not to other pods ---
        await nodeExec("sysctl", ["-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"]);
        await nodeExec(programs.iptables, ["-t", "nat", "-A", "POSTROUTING", "-s", options.podCidr, "!", "-d", options.clusterCidr, "-m", "comment", "--comment", "e2e: pods to the world", "-j", "MASQUERADE"]);

        // --- the kubelet ---
        fs.writeFileSync(file("resolv.conf"), "# no upstream DNS in the test's network\n");
        fs.writeFileSync(file("kubelet.json"), JSON.stringify(kubeletConfig(options, socket, file("resolv.conf"), file("pod-logs")), null, 2));
        start("kubelet", programs.kubelet, [
            `--config=${file("kubelet.json")}`,
            `--kubeconfig=${cluster.kubeconfigFor(`kubelet-${name}`)}`,
            `--root-dir=${file("kubelet")}`,
            `--cert-dir=${file("kubelet-pki")}`,
            `--hostname-override=${name}`,
            `--node-ip=${options.address}`,
            "--v=1",
        ]);
        const kubectl = (...args: string[]) => exec(ns, requireTool("kubectl"), ["--kubeconfig", cluster.kubeconfig, ...args], { timeoutMs: 20_000 });
        const ready = await waitUntil(async () => (await kubectl("get", "node", name, "--output=jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")).stdout === "True", 90_000, 500);
        if (!ready) throw new Error(`the node ${name} did not become Ready:\n${logs()}`);

        // --- kube-proxy and the network-policy controller ---
        fs.writeFileSync(file("kube-proxy.json"), JSON.stringify({
            apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
            kind: "KubeProxyConfiguration",
            mode: "iptables",
            clusterCIDR: options.clusterCidr,
            hostnameOverride: name,
            clientConnection: { kubeconfig: cluster.kubeconfigFor("kube-proxy") },
            // The netns's conntrack table size cannot be set from here: leave it.
            conntrack: { maxPerCore: 0 },
            oomScoreAdj: 0,
            healthzBindAddress: "127.0.0.1:10256",
            metricsBindAddress: "127.0.0.1:10249",
        }, null, 2));
        start("kube-proxy", programs["kube-proxy"], [`--config=${file("kube-proxy.json")}`, "--v=1"]);
        // kube-router's sync writes the whole filter table back (iptables-save, then restore):
        // started together, it removed a chain kube-proxy had just made, kube-proxy's first sync
        // failed ("Chain 'KUBE-EXTERNAL-SERVICES' does not exist") and, with no Service changing
        // on a new Node, no Service rule came there for minutes: pods on it reached no ClusterIP.
        // As a node brings its policy controller up after its service proxy, it starts once
        // kube-proxy has written the Services (the API server's own among them).
        const proxying = await waitUntil(async () => (await nodeExec(programs["iptables-save"], ["-t", "nat"])).stdout.includes("default/kubernetes:https"), 60_000, 250);
        if (!proxying) throw new Error(`kube-proxy wrote no Service rules on ${name} within 60 s:\n${logs("kube-proxy")}`);
        // As k3s runs it: the firewall (network policy) alone, no routing, no service proxy.
        start("kube-router", programs["kube-router"], [
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            `--kubeconfig=${cluster.kubeconfigFor("kube-router")}`,
            `--hostname-override=${name}`,
            `--service-cluster-ip-range=${options.serviceCidr}`,
            "--health-port=0",
            "--metrics-port=0",
        ]);
    } catch (err) {
        await stop();
        throw err;
    }

    return {
        name,
        address: options.address,
        containerProcesses(containerId) {
            const id = containerId.replace(/^containerd:\/\//, "");
            containerIds.add(id);
            const r = spawnSync(programs.nsenter, ctr("tasks", "ls"), { encoding: "utf8" });
            const line = r.stdout.split("\n").find((l) => l.startsWith(`${id} `));
            const pid = Number(line?.trim().split(/\s+/)[1]);
            return pid > 0 ? processTree(pid) : [];
        },
        logs,
        stop,
    };
}

/** containerd's names for a reference: as given, and as CRI resolves a tag with a digest (the digest alone). */
function containerdNames(reference: string): string[] {
    const withDefaults = /^[^/]+\.[^/]+\//.test(reference) || reference.startsWith("localhost/") ? reference : `docker.io/${reference.includes("/") ? "" : "library/"}${reference}`;
    const digested = /^(.*?)(:[^/@]+)?(@sha256:[0-9a-f]{64})$/.exec(withDefaults);
    return digested ? [withDefaults.replace(/@sha256:.*$/, ""), `${digested[1]}${digested[3]}`] : [withDefaults];
}

/** containerd 1.6's config: everything under the node's directory (REAL-NODE.md's settings). */
function containerdConfig(dir: string, cniConfDir: string): string {
    return `version = 2
root = "${dir}/root"
state = "${dir}/state"
[grpc]
  address = "${dir}/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails to start.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${dir}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${cniConfDir}"
`;
}

/** The pods' network on this node: a bridge, addresses from the node's range, no masquerade of its own. */
function cniConfig(options: NodeOptions, ipamDir: string) {
    return {
        cniVersion: "1.0.0",
        name: "e2e-pods",
        plugins: [
            {
                type: "bridge",
                bridge: "cni0",
                isGateway: true,
                // Masqueraded by the node's own rule: not between pods of different nodes.
                ipMasq: false,
                hairpinMode: true,
                ipam: { type: "host-local", ranges: [[{ subnet: options.podCidr }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: ipamDir },
            },
            { type: "portmap", capabilities: { portMappings: true } },
        ],
    };
}

/** The kubelet's configuration (REAL-NODE.md's settings), serving exec and logs to the API server. */
function kubeletConfig(options: NodeOptions, socket: string, resolvConf: string, podLogs: string) {
    return {
        apiVersion: "kubelet.config.k8s.io/v1beta1",
        kind: "KubeletConfiguration",
        failCgroupV1: false,
        failSwapOn: false,
        cgroupDriver: "cgroupfs",
        cgroupsPerQOS: false,
        enforceNodeAllocatable: [],
        makeIPTablesUtilChains: false,
        podLogsDir: podLogs,
        containerRuntimeEndpoint: `unix://${socket}`,
        imageServiceEndpoint: `unix://${socket}`,
        address: options.address,
        readOnlyPort: 0,
        healthzBindAddress: "127.0.0.1",
        authentication: { x509: { clientCAFile: options.cluster.caFile }, webhook: { enabled: true }, anonymous: { enabled: false } },
        authorization: { mode: "Webhook" },
        clusterDNS: [options.clusterDns],
        clusterDomain: "cluster.local",
        resolvConf,
        // The images cannot be pulled again: never collect them, never evict for disk.
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        evictionHard: { "memory.available": "1Mi", "nodefs.available": "0%", "nodefs.inodesFree": "0%", "imagefs.available": "0%" },
        serializeImagePulls: false,
    };
}

/**
 * Removes the cgroups runc made for these containers, and k8s.io once it is empty: each
 * controller's <controller>/k8s.io/<id> (cgroup v1), or k8s.io/<id> (v2).
 */
function removeCgroups(ids: ReadonlySet<string>): void {
    const root = "/sys/fs/cgroup";
    const parents = [path.join(root, "k8s.io"), ...(fs.existsSync(root) ? fs.readdirSync(root) : []).map((c) => path.join(root, c, "k8s.io"))];
    for (const parent of parents) {
        if (!fs.existsSync(parent)) continue;
        for (const id of fs.readdirSync(parent).filter((entry) => ids.has(entry))) {
            const dir = path.join(parent, id);
            // A cgroup goes once its last process has: a killed one may take a moment.
            for (let i = 0; i < 20 && fs.existsSync(dir); i++) {
                try {
                    fs.rmdirSync(dir);
                } catch {
                    spawnSync("sleep", ["0.1"]);
                }
            }
        }
        try {
            fs.rmdirSync(parent);
        } catch {
            // not empty: another node's containers, still running
        }
    }
}
