import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { HeadscaleBackups, HeadscaleBackupsArgs } from "../backup";
import { backupNames, restoreInitContainer } from "../backup/jobs";
import { labelsFor, selectorFor } from "../labels";
import { containerPaths, HeadscaleConfigArgs, headscalePorts, policyFileName, renderHeadscaleConfig } from "./config";
import { PolicyArgs, renderPolicy } from "./policy";

export interface HeadscaleServerArgs {
    /** Namespace to create; everything of the overlay lives in it. */
    readonly namespace: string;
    /** Pinned headscale image (0.29.x). */
    readonly image: string;
    readonly config: HeadscaleConfigArgs;
    readonly policy: PolicyArgs;
    /** Size of the database volume, e.g. "1Gi". */
    readonly storageSize: string;
    /** StorageClass of the database volume; "" means the cluster default. */
    readonly storageClass: string;
    /** Namespace allowed to scrape metrics; "" means none. */
    readonly metricsNamespace: string;
    /** Pod labels of each subnet router, the only clients allowed to reach headscale. */
    /** The labels of each subnet router's pods: the only pods admitted to headscale's port. */
    readonly routerSelectors: readonly Record<string, string>[];
    /** Namespace labels, e.g. the Pod Security level the router needs. */
    readonly namespaceLabels?: Record<string, string>;
    /** The backups of the data volume, and what must exist before the first one runs. */
    readonly backups: Omit<HeadscaleBackupsArgs, "namespace" | "headscaleImage" | "jobs"> & {
        readonly jobs: Omit<HeadscaleBackupsArgs["jobs"], "dataClaim" | "headscaleSelector">;
        /** "" for no restore, "latest" or a backup's name. */
        readonly restore: string;
    };
    /** `pulumi destroy` leaves the namespace, and with it the data volume and the router's state. */
    readonly keepDataOnDestroy: boolean;
    /** The provider for the namespace: one that adopts a namespace an earlier destroy left behind. */
    readonly namespaceProvider: k8s.Provider;
}

export const headscaleName = "headscale";

/** The StatefulSet's volume claim template, and the claim it makes for its one pod: TEMPLATE-STATEFULSET-0. */
const dataClaimTemplate = "data";
export const dataClaim = `${dataClaimTemplate}-${headscaleName}-0`;

/**
 * headscale in the home cluster: its namespace, config and policy, a one-replica
 * StatefulSet with sqlite on a volume, a ClusterIP Service for the tunnel, and a
 * NetworkPolicy that admits only the subnet router (and, optionally, metrics scrapers).
 */
export class HeadscaleServer extends pulumi.ComponentResource {
    /** The namespace's name. */
    public readonly namespace: pulumi.Output<string>;
    /** In-cluster DNS name of the Service, e.g. headscale.overlay.svc. */
    public readonly serviceHost: pulumi.Output<string>;
    /** The pod that `kubectl exec` reaches for the headscale CLI. */
    public readonly podName: pulumi.Output<string>;
    public readonly statefulSet: k8s.apps.v1.StatefulSet;
    public readonly backups: HeadscaleBackups;
    /** What must have run before the headscale CLI is used: the StatefulSet, and a restore if one was asked for. */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: HeadscaleServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:HeadscaleServer", name, {}, opts);
        const parent = { parent: this };
        const labels = labelsFor(headscaleName, "control-server");
        const selector = selectorFor(headscaleName);

        // Everything else here lives in the namespace: what the server waits for, all of it waits for.
        // Deleting the namespace would delete the data volume's claim; by default, destroy leaves it,
        // and the next up adopts it through its own provider.
        const namespace = new k8s.core.v1.Namespace(`${name}-namespace`, {
            metadata: { name: args.namespace, labels: { ...labelsFor(args.namespace, "namespace"), ...args.namespaceLabels } },
        }, { ...parent, provider: args.namespaceProvider, dependsOn: opts?.dependsOn, retainOnDelete: args.keepDataOnDestroy });
        const ns = namespace.metadata.name;

        const configYaml = renderHeadscaleConfig(args.config);
        const policyText = renderPolicy(args.policy);
        const configMap = new k8s.core.v1.ConfigMap(`${name}-config`, {
            metadata: { name: headscaleName, namespace: ns, labels },
            data: { "config.yaml": configYaml, [policyFileName]: policyText },
        }, parent);

        const service = new k8s.core.v1.Service(`${name}-service`, {
            metadata: { name: headscaleName, namespace: ns, labels },
            spec: {
                type: "ClusterIP",
                selector,
                ports: [{ name: "http", port: headscalePorts.http, targetPort: "http", protocol: "TCP" }],
            },
        }, parent);

        this.backups = new HeadscaleBackups(`${name}-backups`, {
            ...args.backups,
            namespace: ns,
            headscaleImage: args.image,
            jobs: { ...args.backups.jobs, dataClaim, headscaleSelector: selector },
        }, parent);

        const probe = (periodSeconds: number, failureThreshold: number) => ({
            httpGet: { path: "/health", port: "http" },
            periodSeconds,
            failureThreshold,
            timeoutSeconds: 5,
        });
        this.statefulSet = new k8s.apps.v1.StatefulSet(`${name}-statefulset`, {
            metadata: { name: headscaleName, namespace: ns, labels },
            spec: {
                replicas: 1,
                serviceName: service.metadata.name,
                // The data volume outlives the StatefulSet, whatever happens to it.
                persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
                selector: { matchLabels: selector },
                template: {
                    metadata: {
                        labels,
                        // Rolls the pod when config or policy change, and only then.
                        annotations: { "overlay/config-sha256": sha256(configYaml + policyText) },
                    },
                    spec: {
                        automountServiceAccountToken: false,
                        enableServiceLinks: false,
                        securityContext: {
                            runAsNonRoot: true,
                            runAsUser: 65532,
                            runAsGroup: 65532,
                            fsGroup: 65532,
                            seccompProfile: { type: "RuntimeDefault" },
                        },
                        initContainers: [restoreInitContainer(args.backups.jobs.image)],
                        containers: [{
                            name: "headscale",
                            image: args.image,
                            args: ["serve"],
                            ports: [
                                { name: "http", containerPort: headscalePorts.http, protocol: "TCP" },
                                { name: "metrics", containerPort: headscalePorts.metrics, protocol: "TCP" },
                            ],
                            readinessProbe: probe(10, 3),
                            livenessProbe: probe(20, 6),
                            resources: {
                                requests: { cpu: "50m", memory: "64Mi" },
                                limits: { cpu: "1", memory: "512Mi" },
                            },
                            securityContext: {
                                allowPrivilegeEscalation: false,
                                readOnlyRootFilesystem: true,
                                runAsNonRoot: true,
                                capabilities: { drop: ["ALL"] },
                            },
                            volumeMounts: [
                                { name: "config", mountPath: containerPaths.config, readOnly: true },
                                { name: "data", mountPath: containerPaths.data },
                                { name: "run", mountPath: containerPaths.run },
                                { name: "tmp", mountPath: "/tmp" },
                            ],
                        }],
                        volumes: [
                            { name: "config", configMap: { name: configMap.metadata.name } },
                            { name: "run", emptyDir: {} },
                            { name: "tmp", emptyDir: {} },
                            { name: "backup-scripts", configMap: { name: backupNames.scripts, defaultMode: 0o555 } },
                        ],
                    },
                },
                volumeClaimTemplates: [{
                    metadata: { name: dataClaimTemplate, labels },
                    spec: {
                        accessModes: ["ReadWriteOnce"],
                        resources: { requests: { storage: args.storageSize } },
                        ...(args.storageClass ? { storageClassName: args.storageClass } : {}),
                    },
                }],
            },
        // An image change waits for the backup taken before it.
        }, { ...parent, dependsOn: [this.backups.beforeUpgrade] });
        this.ready = [this.statefulSet, ...(args.backups.restore ? [this.backups.restore(args.backups.restore, [this.statefulSet])] : [])];

        new k8s.networking.v1.NetworkPolicy(`${name}-networkpolicy`, {
            metadata: { name: headscaleName, namespace: ns, labels },
            spec: {
                podSelector: { matchLabels: selector },
                policyTypes: ["Ingress"],
                ingress: [
                    { from: args.routerSelectors.map((s) => ({ podSelector: { matchLabels: s } })), ports: [{ port: headscalePorts.http, protocol: "TCP" }] },
                    ...(args.metricsNamespace
                        ? [{
                            from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": args.metricsNamespace } } }],
                            ports: [{ port: headscalePorts.metrics, protocol: "TCP" }],
                        }]
                        : []),
                ],
            },
        }, parent);

        this.namespace = ns;
        this.serviceHost = pulumi.interpolate`${service.metadata.name}.${ns}.svc`;
        this.podName = pulumi.interpolate`${this.statefulSet.metadata.name}-0`;
        this.registerOutputs({ namespace: this.namespace, serviceHost: this.serviceHost, podName: this.podName });
    }
}

function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}
