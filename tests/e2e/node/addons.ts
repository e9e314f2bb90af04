// The cluster's add-ons, as k3s ships them: CoreDNS (its manifests after coredns/deployment's
// kubernetes/coredns.yaml.sed) behind the kube-dns Service, kube-router's ClusterRole for the
// network-policy controller, and local-path storage: a default StorageClass that binds when a
// pod is scheduled, and a provisioner that makes a directory of mode 0777 for each claim on
// the chosen node, as rancher/local-path-provisioner does (volume type local, as k3s sets it).
import * as fs from "node:fs";
import * as path from "node:path";
import { KubeApi } from "../kubeApi";

export interface AddonOptions {
    readonly clusterDns: string;
    /** Names the test's "public" DNS answers (CoreDNS's hosts plugin), e.g. the login server → the VPS. */
    readonly hosts: Readonly<Record<string, string>>;
}

const coreDnsImage = "registry.k8s.io/coredns/coredns:v1.15.0";
const provisionerName = "rancher.io/local-path";
export const storageClassName = "local-path";

/** The add-ons' objects, for `kubectl apply`. */
export function addonManifests(options: AddonOptions): object[] {
    const corefile = [
        ".:53 {",
        "    errors",
        "    health {",
        "        lameduck 5s",
        "    }",
        "    ready",
        "    kubernetes cluster.local in-addr.arpa ip6.arpa {",
        "        pods insecure",
        "        fallthrough in-addr.arpa ip6.arpa",
        "    }",
        // No upstream resolver exists here: these names stand for the public DNS.
        "    hosts {",
        ...Object.entries(options.hosts).map(([name, address]) => `        ${address} ${name}`),
        "        fallthrough",
        "    }",
        "    cache 30",
        "    reload",
        "    loadbalance",
        "}",
        "",
    ].join("\n");
    const labels = { "k8s-app": "kube-dns" };
    return [
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "coredns", namespace: "kube-system" } },
        {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "ClusterRole",
            metadata: { name: "system:coredns" },
            rules: [
                { apiGroups: [""], resources: ["endpoints", "services", "pods", "namespaces"], verbs: ["list", "watch"] },
                { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["list", "watch"] },
            ],
        },
        {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "ClusterRoleBinding",
            metadata: { name: "system:coredns" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:coredns" },
            subjects: [{ kind: "ServiceAccount", name: "coredns", namespace: "kube-system" }],
        },
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "coredns", namespace: "kube-system" }, data: { Corefile: corefile } },
        {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "coredns", namespace: "kube-system", labels },
            spec: {
                replicas: 1,
                selector: { matchLabels: labels },
                template: {
                    metadata: { labels },
                    spec: {
                        serviceAccountName: "coredns",
                        priorityClassName: "system-cluster-critical",
                        dnsPolicy: "Default",
                        containers: [{
                            name: "coredns",
                            image: coreDnsImage,
                            args: ["-conf", "/etc/coredns/Corefile"],
                            resources: { limits: { memory: "170Mi" }, requests: { cpu: "100m", memory: "70Mi" } },
                            volumeMounts: [{ name: "config-volume", mountPath: "/etc/coredns", readOnly: true }],
                            ports: [
                                { containerPort: 53, name: "dns", protocol: "UDP" },
                                { containerPort: 53, name: "dns-tcp", protocol: "TCP" },
                                { containerPort: 9153, name: "metrics", protocol: "TCP" },
                            ],
                            securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ["NET_BIND_SERVICE"], drop: ["ALL"] }, readOnlyRootFilesystem: true },
                            livenessProbe: { httpGet: { path: "/health", port: 8080, scheme: "HTTP" }, initialDelaySeconds: 60, timeoutSeconds: 5, successThreshold: 1, failureThreshold: 5 },
                            readinessProbe: { httpGet: { path: "/ready", port: 8181, scheme: "HTTP" } },
                        }],
                        volumes: [{ name: "config-volume", configMap: { name: "coredns", items: [{ key: "Corefile", path: "Corefile" }] } }],
                    },
                },
            },
        },
        {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "kube-dns", namespace: "kube-system", labels },
            spec: {
                selector: labels,
                clusterIP: options.clusterDns,
                ports: [
                    { name: "dns", port: 53, protocol: "UDP" },
                    { name: "dns-tcp", port: 53, protocol: "TCP" },
                    { name: "metrics", port: 9153, protocol: "TCP" },
                ],
            },
        },
        // kube-router's own ClusterRole (daemonset/generic-kuberouter.yaml), for the network-policy
        // controller's informers, bound to the user of its client certificate.
        {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "ClusterRole",
            metadata: { name: "kube-router" },
            rules: [
                { apiGroups: [""], resources: ["namespaces", "pods", "services", "nodes", "endpoints"], verbs: ["list", "get", "watch"] },
                { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: ["list", "get", "watch"] },
                { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
                { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
                { apiGroups: [""], resources: ["services/status"], verbs: ["update"] },
            ],
        },
        {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "ClusterRoleBinding",
            metadata: { name: "kube-router" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "kube-router" },
            subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "system:kube-router" }],
        },
        {
            apiVersion: "storage.k8s.io/v1",
            kind: "StorageClass",
            metadata: { name: storageClassName, annotations: { "storageclass.kubernetes.io/is-default-class": "true" } },
            provisioner: provisionerName,
            volumeBindingMode: "WaitForFirstConsumer",
            // k3s's is Delete; the test reads headscale's database after its namespace is gone.
            reclaimPolicy: "Retain",
        },
    ];
}

/**
 * local-path's provisioning, as a loop: a PersistentVolume (type local, pinned to the node the
 * scheduler chose) for each claim of the class, on a directory <storage>/<pv>_<namespace>_<claim>
 * made with mode 0777. Bounded by `running()`; returns when it goes false.
 */
export async function provisionVolumes(api: KubeApi, storage: string, running: () => boolean, note: (message: string) => void): Promise<void> {
    fs.mkdirSync(storage, { recursive: true, mode: 0o700 });
    while (running()) {
        try {
            const claims = await api.get("/api/v1/persistentvolumeclaims");
            for (const claim of claims.items as any[]) {
                const node = claim.metadata.annotations?.["volume.kubernetes.io/selected-node"];
                if (claim.spec.volumeName || claim.metadata.deletionTimestamp || !node || claim.spec.storageClassName !== storageClassName) continue;
                const name = `pvc-${claim.metadata.uid}`;
                const dir = path.join(storage, `${name}_${claim.metadata.namespace}_${claim.metadata.name}`);
                fs.mkdirSync(dir, { recursive: true });
                fs.chmodSync(dir, 0o777);
                await api.post("/api/v1/persistentvolumes", {
                    apiVersion: "v1",
                    kind: "PersistentVolume",
                    metadata: { name, annotations: { "pv.kubernetes.io/provisioned-by": provisionerName } },
                    spec: {
                        capacity: { storage: claim.spec.resources.requests.storage },
                        accessModes: claim.spec.accessModes,
                        persistentVolumeReclaimPolicy: "Retain",
                        storageClassName,
                        local: { path: dir },
                        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [node] }] }] } },
                        claimRef: { apiVersion: "v1", kind: "PersistentVolumeClaim", namespace: claim.metadata.namespace, name: claim.metadata.name, uid: claim.metadata.uid },
                    },
                }).catch((err) => {
                    if (!/: 409 /.test((err as Error).message)) throw err;
                });
            }
        } catch (err) {
            note(`provisioning: ${(err as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 1000).unref());
    }
}
