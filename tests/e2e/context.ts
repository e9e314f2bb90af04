// The end-to-end run's one context: what the harness starts (the namespaces, the VM, the
// control plane, the Nodes, the Pulumi project), set up and torn down here, and what one phase
// leaves for the next (the stack's outputs, the device, the VPS as applied). The phases
// (phases/) register the tests; the helpers (lib/) act on this context.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Netns, waitUntil } from "../helpers/netns";
import { requireTool, toolsDir } from "../helpers/tools";
import { ControlPlane, startControlPlane } from "./controlPlane";
import { mustExec } from "./exec";
import { kubeApi, KubeApi } from "./kubeApi";
import { Device } from "./lib/device";
import { Figures } from "./lib/figures";
import { makeCertificate, TlsFiles } from "./lib/certificates";
import {
    clusterCidr, clusterDns, createWorld, Forward, home2Address, home2PodCidr, homeAddress, homePodCidr, lanServiceAddress, serviceCidr, vpsAddress, World,
} from "./network";
import { addonManifests, provisionVolumes } from "./node/addons";
import { buildImages, defaultImagesDir, testCa } from "./node/buildImages";
import { images } from "./node/images";
import { KubeNode, startNode } from "./node/node";
import { PulumiProject, pulumiProject } from "./pulumiCli";
import { bootVm, readImage, Vm, VmImage } from "./vm";

export const hostname = "headscale.example.com";
export const namespace = "overlay";
export const stack = "e2e";
export const nodeName = "home-node";
/** The second Node, there while the stack runs two routers. */
export const node2Name = "home-node-2";
export const servicePort = 8000;
/** The LAN route of the example stack, which the routers advertise. */
export const lanRoute = "192.168.1.0/24";
export const lanUrl = `http://${lanServiceAddress}:${servicePort}/`;
/** The whole run's bound: the watchdog stops everything after it (OVERLAY_E2E_MINUTES on a slower machine). */
export const boundMs = Number(process.env.OVERLAY_E2E_MINUTES ?? 30) * 60_000;

/** The VPS's ports: the allow-listed ones, and some the firewall must close (a test listener, coturn's TCP port, the tunnel port). */
export const allowedPorts = ["tcp/22", "tcp/80", "tcp/443", "udp/3478"];
export const closedPorts = ["tcp/5555", "udp/5555", "tcp/3478", "tcp/8080"];

export class E2e {
    readonly run = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-e2e-"));
    /** QEMU listens on wan's 127.0.0.1 only, one host port per VPS port. */
    readonly forwards: readonly Forward[];
    readonly figures = new Figures();
    private readonly started = Date.now();
    world!: World;
    image!: VmImage;
    vm!: Vm;
    cluster!: ControlPlane;
    /** The harness's own API client, as the cluster's admin. */
    api!: KubeApi;
    home!: KubeNode;
    /** The second Node, while the stack runs two routers. */
    home2?: KubeNode;
    project!: PulumiProject;
    /** The test CA (the tailscale image and the device trust it) and the VPS's certificate for hostname. */
    tls!: TlsFiles;
    /** The images' archives, for the Nodes. */
    archives!: Map<string, string>;

    // --- what one phase leaves for the next ---
    /** pulumi up has built the stack: later phases need it, and fail at once without it. */
    built = false;
    /** The URNs the fresh preview planned. */
    planned: string[] = [];
    outputs: Record<string, any> = {};
    device?: Device;
    /** The VM as the VPS steps applied it, before the drift phase edits it. */
    applied?: Record<string, string>;
    backupName?: string;
    /** The HA phase's routers: the one killed, the one that took over. */
    killed = "";
    survivor = "";

    /** Background loops still running (watchLan): tearDown stops them. */
    readonly loops = new Set<{ stop(): Promise<unknown> }>();

    private provisioning = true;
    private readonly notes: string[] = [];

    constructor() {
        let nextPort = 20000 + (process.pid % 20) * 100;
        this.forwards = [...allowedPorts, ...closedPorts].map((p) => {
            const [protocol, port] = p.split("/");
            return { protocol: protocol as "tcp" | "udp", guestPort: Number(port), hostPort: nextPort++ };
        });
    }

    /** Later phases need the built stack; without it they fail at once, not by timeout. */
    needUp(): void {
        if (!this.built) throw new Error("pulumi up did not finish: see the failure above");
    }

    /** Starts everything but the second Node: the namespaces, the VM, the cluster with its add-ons and first Node. */
    async setUp(): Promise<void> {
        for (const tool of ["qemu-system-x86_64", "qemu-img", "socat", "ssh", "openssl", "curl", "nft", "tailscale", "tailscaled", "etcd", "kube-apiserver",
            "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy", "kube-router", "containerd", "runc", "ctr", "umoci"]) requireTool(tool);
        this.image = readImage(path.join(toolsDir, "vm"));
        this.archives = buildImages(defaultImagesDir);
        this.world = createWorld(hostname, this.forwards);
        this.world.lan.start(process.execPath, [path.join(__dirname, "httpService.js"), lanServiceAddress, String(servicePort), "lan-service"]);

        const vmStarted = Date.now();
        const booting = bootVm(this.image, path.join(this.run, "vm"), this.world.wan, this.forwards);
        const clusterStarted = Date.now();
        this.cluster = await startControlPlane(this.world.home, path.join(this.run, "cluster"), { advertiseAddress: homeAddress, nodeNames: [nodeName, node2Name], serviceCidr });
        this.figures.report("control plane ready", (Date.now() - clusterStarted) / 1000);
        // This process reaches the API server in home through a Unix socket relayed into it.
        const apiSocket = path.join(this.run, "apiserver.sock");
        this.world.home.start(requireTool("socat"), [`UNIX-LISTEN:${apiSocket},fork,mode=600`, "TCP:127.0.0.1:6443"]);
        if (!(await waitUntil(() => fs.existsSync(apiSocket), 10_000))) throw new Error("the API server relay did not start");
        this.api = kubeApi({ server: "https://127.0.0.1:6443", socketPath: apiSocket, caFile: this.cluster.caFile, certFile: this.cluster.adminCertFile, keyFile: this.cluster.adminKeyFile });
        // The cluster's add-ons, as k3s applies them: CoreDNS (answering the login server's name
        // with the VPS's address, as the public DNS would), kube-router's role, local-path storage.
        const addons = addonManifests({ clusterDns, hosts: { [hostname]: vpsAddress } });
        await mustExec(this.world.home, requireTool("kubectl"), ["--kubeconfig", this.cluster.kubeconfig, "apply", "--output=name", "-f", "-"],
            { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: addons }) });
        void provisionVolumes(this.api, path.join(this.run, "storage"), () => this.provisioning, (m) => this.note(m));

        const nodeStarted = Date.now();
        this.home = await this.startNode(nodeName);
        this.figures.report("node Ready (containerd started, images imported, kubelet registered)", (Date.now() - nodeStarted) / 1000);
        const dns = await waitUntil(async () => (await this.api.get("/api/v1/namespaces/kube-system/endpoints/kube-dns")).subsets?.[0]?.addresses?.length > 0, 120_000, 1000);
        if (!dns) throw new Error(`CoreDNS did not become ready:\n${this.home.logs()}`);
        this.figures.report("CoreDNS ready", (Date.now() - nodeStarted) / 1000);

        const projectDir = path.join(this.run, "project");
        fs.mkdirSync(projectDir);
        this.project = pulumiProject({ ns: this.world.home, dir: projectDir, pathPrefix: [] });

        this.vm = await booting;
        this.figures.report("VM answers ssh after boot", (Date.now() - vmStarted) / 1000);
        // A listener on a port the firewall must close, to see it answer before and not after.
        const listeners = await this.vm.ssh([
            "systemd-run -q --unit=e2e-probe-tcp socat TCP-LISTEN:5555,fork,reuseaddr SYSTEM:'echo open'",
            "systemd-run -q --unit=e2e-probe-udp socat UDP-RECVFROM:5555,fork SYSTEM:'echo open'",
        ].join(" && "));
        if (listeners.status !== 0) throw new Error(listeners.stderr);
        this.tls = await makeCertificate(path.join(this.run, "tls"), testCa(defaultImagesDir), hostname);
    }

    /** A Node of the cluster: home-node in home, home-node-2 in home2. */
    async startNode(name: string): Promise<KubeNode> {
        const second = name === node2Name;
        return startNode({
            name,
            ns: second ? this.world.home2 : this.world.home,
            address: second ? home2Address : homeAddress,
            podCidr: second ? home2PodCidr : homePodCidr,
            clusterCidr,
            serviceCidr,
            clusterDns,
            dir: path.join(this.run, name),
            cluster: this.cluster,
            images: images.map((image) => ({ image, archive: this.archives.get(image.name)! })),
        });
    }

    /** A Node's network namespace. */
    netnsOf(node: string): Netns {
        return node === node2Name ? this.world.home2 : this.world.home;
    }

    /** The Node a pod runs on. */
    node(name: string): KubeNode {
        const node = [this.home, this.home2].find((n) => n?.name === name);
        if (!node) throw new Error(`no Node ${name} in the harness`);
        return node;
    }

    /** Something went wrong in a background loop: printed at the end. */
    note(message: string): void {
        if (this.notes.length < 50) this.notes.push(`${new Date().toISOString()} ${message}`);
    }

    /** Everything the harness started goes, pass or fail; the figures are printed. */
    async tearDown(): Promise<void> {
        this.figures.report("the whole end-to-end run", Math.round((Date.now() - this.started) / 1000));
        this.figures.print();
        if (this.notes.length) console.log(`harness notes:\n${this.notes.join("\n")}`);
        this.provisioning = false;
        for (const loop of [...this.loops]) await loop.stop();
        await this.home2?.stop();
        await this.home?.stop();
        this.cluster?.stop();
        this.vm?.stop();
        this.world?.destroy();
        fs.rmSync(this.run, { recursive: true, force: true });
    }
}
