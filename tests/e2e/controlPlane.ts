// A real Kubernetes control plane for the end-to-end test: etcd 3.6.16, kube-apiserver,
// kube-controller-manager and kube-scheduler v1.34.4 (scripts/install-kubernetes.sh builds
// them from the Go module proxy), run as processes in one of the test's network namespaces,
// with certificates made here by openssl. It is the real API the program's manifests go to:
// RBAC, the Node authorizer, Pod Security admission, the StatefulSet and ServiceAccount
// controllers and the scheduler all decide for real. Pod Security's default level is baseline,
// as on a hardened cluster, so that a namespace gets more only by its own label. The nodes
// (node/node.ts) join with the certificates made here: each kubelet its node's, kube-proxy and
// the network-policy controller theirs; the API server reaches the kubelets for exec and logs
// with a client certificate of its own.
//
// Everything listens inside the namespace: etcd and the controllers' own ports on its
// 127.0.0.1, the API server on its addresses (0.0.0.0 there), so that the components reach
// it on 127.0.0.1 and clients on the advertise address. All data and logs stay under `dir`.
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as ipaddr from "ipaddr.js";
import { Netns, waitUntil } from "../helpers/netns";
import { requireTool } from "../helpers/tools";
import { exec, mustExec } from "./exec";

export interface ControlPlane {
    /** Path of an admin kubeconfig (client cert with O=system:masters) for https://<advertise>:6443 */
    readonly kubeconfig: string;
    /** Context name inside it. */
    readonly context: string;
    readonly server: string;
    /** PEM files the nodes need: the cluster CA, and a client cert/key for each node (CN=system:node:<nodeName>, O=system:nodes) */
    readonly caFile: string;
    readonly nodeCredentials: Readonly<Record<string, { readonly certFile: string; readonly keyFile: string }>>;
    /** A kubeconfig for each node daemon: `kubelet-<node>`, `kube-proxy`, `kube-router`. */
    kubeconfigFor(user: string): string;
    /** The admin's client cert/key (O=system:masters), for the harness's own requests. */
    readonly adminCertFile: string;
    readonly adminKeyFile: string;
    /** Output of each component, for failure messages. */
    logs(): string;
    stop(): void;
}

export interface ControlPlaneOptions {
    /** An address of the namespace's own: the API server's endpoint and the admin kubeconfig's server. */
    readonly advertiseAddress: string;
    /** The nodes' names, for their client certificates. */
    readonly nodeNames: readonly string[];
    /** The Services' range, e.g. 10.96.0.0/24: its first address is the `kubernetes` Service's. */
    readonly serviceCidr: string;
}

const apiPort = 6443;
const etcdClientPort = 2379;
const etcdPeerPort = 2380;
const context = "e2e";
const certDays = "7";
/** The API server answers /readyz about 2 s after start, the controllers within seconds more. */
const readyTimeoutMs = 90_000;
const logTailBytes = 4000;

interface Pki {
    readonly ca: string;
    readonly caKey: string;
    readonly serverCert: string;
    readonly serverKey: string;
    readonly serviceAccountKey: string;
    readonly serviceAccountPub: string;
    /** Client certificates by user: admin, controller-manager, scheduler, the node daemons, the API server's to kubelets. */
    readonly clients: Record<ClientName, { cert: string; key: string }>;
    /** Each node's client certificate, by node name. */
    readonly nodes: Record<string, { cert: string; key: string }>;
}

type ClientName = "admin" | "controller-manager" | "scheduler" | "kube-proxy" | "kube-router" | "apiserver-kubelet-client";

interface Component {
    readonly name: string;
    readonly child: ChildProcess;
    readonly logFile: string;
}

/** The first address of an IPv4 range: 10.96.0.1 for 10.96.0.0/24. */
function firstAddress(cidr: string): string {
    const network = ipaddr.IPv4.networkAddressFromCIDR(cidr).toByteArray();
    const next = ((network[0] << 24) | (network[1] << 16) | (network[2] << 8) | network[3]) + 1;
    return ipaddr.fromByteArray([(next >>> 24) & 255, (next >>> 16) & 255, (next >>> 8) & 255, next & 255]).toString();
}

// --- certificates: one CA signs everything (serving, clients, the controller-manager's CSRs) ---

/** openssl's settings: explicit extensions, so that no default makes a leaf a CA. */
function opensslConfig(sans: readonly string[]): string {
    return [
        "[req]",
        "distinguished_name = dn",
        "[dn]",
        "[ca]",
        "basicConstraints = critical, CA:TRUE",
        "keyUsage = critical, keyCertSign, cRLSign, digitalSignature",
        "subjectKeyIdentifier = hash",
        "[client]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        "extendedKeyUsage = clientAuth",
        "[server]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        "extendedKeyUsage = serverAuth",
        `subjectAltName = ${sans.join(", ")}`,
        "",
    ].join("\n");
}

async function makePki(dir: string, options: ControlPlaneOptions): Promise<Pki> {
    const openssl = requireTool("openssl");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const sans = [
        ...["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"].map((n) => `DNS:${n}`),
        ...["127.0.0.1", options.advertiseAddress, firstAddress(options.serviceCidr)].map((a) => `IP:${a}`),
    ];
    const config = path.join(dir, "openssl.cnf");
    fs.writeFileSync(config, opensslConfig(sans));
    const file = (name: string) => path.join(dir, name);
    // P-256 keys: quick to make, and every component (Go) and Node.js take them.
    const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    const ca = file("ca.crt");
    const caKey = file("ca.key");
    await mustExec(undefined, openssl, ["req", "-x509", "-new", ...newKey, "-keyout", caKey, "-out", ca, "-days", certDays,
        "-subj", "/CN=e2e-kubernetes-ca", "-config", config, "-extensions", "ca"]);
    const sign = async (name: string, subject: string, extensions: "client" | "server") => {
        const cert = file(`${name}.crt`);
        const key = file(`${name}.key`);
        await mustExec(undefined, openssl, ["req", "-x509", "-new", ...newKey, "-keyout", key, "-out", cert, "-days", certDays,
            "-CA", ca, "-CAkey", caKey, "-subj", subject, "-config", config, "-extensions", extensions]);
        return { cert, key };
    };
    const serviceAccountKey = file("service-account.key");
    const serviceAccountPub = file("service-account.pub");
    const [server, admin, controllerManager, scheduler, kubeProxy, kubeRouter, kubeletClient] = await Promise.all([
        sign("apiserver", "/CN=kube-apiserver", "server"),
        sign("admin", "/O=system:masters/CN=e2e-admin", "client"),
        sign("controller-manager", "/CN=system:kube-controller-manager", "client"),
        sign("scheduler", "/CN=system:kube-scheduler", "client"),
        // Bound to system:node-proxier by RBAC's bootstrap policy.
        sign("kube-proxy", "/CN=system:kube-proxy", "client"),
        // Bound by the cluster's add-ons to kube-router's own ClusterRole.
        sign("kube-router", "/CN=system:kube-router", "client"),
        sign("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", "client"),
        // The service-account token key: RSA, as kube-apiserver signs tokens with RS256.
        mustExec(undefined, openssl, ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", serviceAccountKey])
            .then(() => mustExec(undefined, openssl, ["pkey", "-in", serviceAccountKey, "-pubout", "-out", serviceAccountPub])),
    ]);
    return {
        ca, caKey, serverCert: server.cert, serverKey: server.key, serviceAccountKey, serviceAccountPub,
        clients: { admin, "controller-manager": controllerManager, scheduler, "kube-proxy": kubeProxy, "kube-router": kubeRouter, "apiserver-kubelet-client": kubeletClient },
        nodes: Object.fromEntries(await Promise.all(options.nodeNames.map(async (name) => [name, await sign(`node-${name}`, `/O=system:nodes/CN=system:node:${name}`, "client")] as const))),
    };
}

/** A kubeconfig with file references (JSON is YAML). */
function writeKubeconfig(file: string, server: string, ca: string, user: string, client: { cert: string; key: string }): string {
    fs.writeFileSync(file, `${JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: context, cluster: { server, "certificate-authority": ca } }],
        users: [{ name: user, user: { "client-certificate": client.cert, "client-key": client.key } }],
        contexts: [{ name: context, context: { cluster: context, user } }],
        "current-context": context,
    }, null, 2)}\n`, { mode: 0o600 });
    return file;
}

// --- the processes ---

/** Starts a component in the namespace, its output appended to <logs>/<name>.log. */
function startComponent(ns: Netns, logs: string, name: string, program: string, args: string[]): Component {
    const logFile = path.join(logs, `${name}.log`);
    const fd = fs.openSync(logFile, "a");
    let open = true;
    const append = (d: Buffer | string) => {
        if (open) fs.writeSync(fd, typeof d === "string" ? Buffer.from(d) : d);
    };
    const child = ns.start(program, args);
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    child.on("error", (err) => append(`\n[${name}: ${err.message}]\n`));
    // "close" comes after the last output: nothing writes to the file after this.
    child.on("close", (code, signal) => {
        append(`\n[${name} exited: ${signal ?? code}]\n`);
        open = false;
        fs.closeSync(fd);
    });
    return { name, child, logFile };
}

/** The last bytes of a file, as text. */
function tail(file: string, bytes: number): string {
    if (!fs.existsSync(file)) return "";
    const fd = fs.openSync(file, "r");
    try {
        const size = fs.fstatSync(fd).size;
        const length = Math.min(size, bytes);
        const buffer = Buffer.alloc(length);
        fs.readSync(fd, buffer, 0, length, size - length);
        return buffer.toString("utf8");
    } finally {
        fs.closeSync(fd);
    }
}

export async function startControlPlane(ns: Netns, dir: string, options: ControlPlaneOptions): Promise<ControlPlane> {
    // Every program first: a missing one fails before anything starts.
    const programs = Object.fromEntries(["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"].map((name) => [name, requireTool(name)]));
    const kubectl = programs.kubectl;
    fs.mkdirSync(dir, { recursive: true });
    const pki = await makePki(path.join(dir, "pki"), options);
    const local = `https://127.0.0.1:${apiPort}`;
    const server = `https://${options.advertiseAddress}:${apiPort}`;
    const kubeconfigs = path.join(dir, "kubeconfig");
    fs.mkdirSync(kubeconfigs, { recursive: true, mode: 0o700 });
    const kubeconfig = writeKubeconfig(path.join(kubeconfigs, "admin.yaml"), server, pki.ca, "e2e-admin", pki.clients.admin);
    const controllerManagerConfig = writeKubeconfig(path.join(kubeconfigs, "controller-manager.yaml"), local, pki.ca,
        "system:kube-controller-manager", pki.clients["controller-manager"]);
    const schedulerConfig = writeKubeconfig(path.join(kubeconfigs, "scheduler.yaml"), local, pki.ca, "system:kube-scheduler", pki.clients.scheduler);
    const kubeconfigFor = (user: string): string => {
        const client = user.startsWith("kubelet-") ? pki.nodes[user.slice("kubelet-".length)] : pki.clients[user as ClientName];
        if (!client) throw new Error(`no client certificate for ${user}`);
        return writeKubeconfig(path.join(kubeconfigs, `${user}.yaml`), server, pki.ca, user, client);
    };
    // Pod Security admission: baseline unless a namespace's label says otherwise.
    const admission = path.join(dir, "admission.yaml");
    fs.writeFileSync(admission, JSON.stringify({
        apiVersion: "apiserver.config.k8s.io/v1",
        kind: "AdmissionConfiguration",
        plugins: [{
            name: "PodSecurity",
            configuration: {
                apiVersion: "pod-security.admission.config.k8s.io/v1",
                kind: "PodSecurityConfiguration",
                defaults: { enforce: "baseline", "enforce-version": "latest", audit: "baseline", "audit-version": "latest", warn: "baseline", "warn-version": "latest" },
                exemptions: { usernames: [], runtimeClasses: [], namespaces: [] },
            },
        }],
    }, null, 2));
    const logs = path.join(dir, "logs");
    fs.mkdirSync(logs, { recursive: true });
    // A new cluster each time: the certificates above are new.
    const etcdData = path.join(dir, "etcd");
    fs.rmSync(etcdData, { recursive: true, force: true });
    fs.mkdirSync(etcdData, { mode: 0o700 });

    const components: Component[] = [];
    const logsText = () => components.map((c) => `--- ${c.name} (${c.child.exitCode === null && c.child.signalCode === null ? "running" : `exited: ${c.child.signalCode ?? c.child.exitCode}`}) ---\n${tail(c.logFile, logTailBytes)}`).join("\n");
    const stop = () => {
        for (const c of components) c.child.kill("SIGKILL");
    };
    const exited = () => components.find((c) => c.child.exitCode !== null || c.child.signalCode !== null);
    const start = (name: string, args: string[]) => {
        components.push(startComponent(ns, logs, name, programs[name], args));
    };
    const kubectlOk = async (...args: string[]) =>
        (await exec(ns, kubectl, ["--kubeconfig", kubeconfig, "--request-timeout=5s", ...args], { timeoutMs: 10_000 })).status === 0;
    /** Bounded: until `ready` or a component exits; throws with the logs otherwise. */
    const waitFor = async (what: string, ready: () => Promise<boolean>) => {
        const ok = await waitUntil(async () => exited() !== undefined || (await ready()), readyTimeoutMs, 250);
        const dead = exited();
        if (ok && !dead) return;
        stop();
        throw new Error(`the control plane did not become ready (${what}): ${dead ? `${dead.name} exited` : `not within ${readyTimeoutMs / 1000} s`}\n${logsText()}`);
    };

    try {
        const etcdUrl = (port: number) => `http://127.0.0.1:${port}`;
        start("etcd", [
            "--name=e2e",
            `--data-dir=${etcdData}`,
            `--listen-client-urls=${etcdUrl(etcdClientPort)}`,
            `--advertise-client-urls=${etcdUrl(etcdClientPort)}`,
            `--listen-peer-urls=${etcdUrl(etcdPeerPort)}`,
            `--initial-advertise-peer-urls=${etcdUrl(etcdPeerPort)}`,
            `--initial-cluster=e2e=${etcdUrl(etcdPeerPort)}`,
            "--initial-cluster-state=new",
        ]);
        // The API server waits for etcd by itself.
        start("kube-apiserver", [
            `--etcd-servers=${etcdUrl(etcdClientPort)}`,
            // Every address of the namespace: the components use 127.0.0.1, clients the advertise address.
            "--bind-address=0.0.0.0",
            `--secure-port=${apiPort}`,
            // Not loopback: the `kubernetes` Service's Endpoints refuse it.
            `--advertise-address=${options.advertiseAddress}`,
            `--client-ca-file=${pki.ca}`,
            `--tls-cert-file=${pki.serverCert}`,
            `--tls-private-key-file=${pki.serverKey}`,
            `--service-account-key-file=${pki.serviceAccountPub}`,
            `--service-account-signing-key-file=${pki.serviceAccountKey}`,
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            `--service-cluster-ip-range=${options.serviceCidr}`,
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,DefaultStorageClass,ResourceQuota,NodeRestriction",
            `--admission-control-config-file=${admission}`,
            // exec and logs: the API server reaches each kubelet at its node's address.
            `--kubelet-client-certificate=${pki.clients["apiserver-kubelet-client"].cert}`,
            `--kubelet-client-key=${pki.clients["apiserver-kubelet-client"].key}`,
            "--kubelet-preferred-address-types=InternalIP",
            `--cert-dir=${path.join(dir, "apiserver")}`,
        ]);
        await waitFor("/readyz", () => kubectlOk("get", "--raw=/readyz"));

        const delegated = (config: string) => [`--kubeconfig=${config}`, `--authentication-kubeconfig=${config}`, `--authorization-kubeconfig=${config}`];
        start("kube-controller-manager", [
            ...delegated(controllerManagerConfig),
            "--bind-address=127.0.0.1",
            `--cert-dir=${path.join(dir, "controller-manager")}`,
            `--service-account-private-key-file=${pki.serviceAccountKey}`,
            `--root-ca-file=${pki.ca}`,
            `--cluster-signing-cert-file=${pki.ca}`,
            `--cluster-signing-key-file=${pki.caKey}`,
            `--service-cluster-ip-range=${options.serviceCidr}`,
            "--use-service-account-credentials=true",
            "--leader-elect=false",
        ]);
        start("kube-scheduler", [
            ...delegated(schedulerConfig),
            "--bind-address=127.0.0.1",
            `--cert-dir=${path.join(dir, "scheduler")}`,
            "--leader-elect=false",
        ]);
        // The default ServiceAccount comes from the controller-manager: Pods need it (ServiceAccount admission).
        await waitFor("the default namespace and ServiceAccount", () => kubectlOk("get", "--namespace=default", "namespace/default", "serviceaccount/default", "--output=name"));
    } catch (err) {
        stop();
        throw err;
    }

    return {
        kubeconfig,
        context,
        server,
        caFile: pki.ca,
        nodeCredentials: Object.fromEntries(Object.entries(pki.nodes).map(([name, c]) => [name, { certFile: c.cert, keyFile: c.key }])),
        kubeconfigFor,
        adminCertFile: pki.clients.admin.cert,
        adminKeyFile: pki.clients.admin.key,
        logs: logsText,
        stop,
    };
}
