import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { HeadscaleCli, kubectlWords } from "../keys/cli";
import { componentSelector, labelsFor, selectorFor } from "../labels";
import { commandLine, stdinScriptCommand } from "../shell";
import { knownHostsLine, tunnelCommand } from "./tunnel";

export interface SubnetRouterArgs {
    readonly namespace: pulumi.Input<string>;
    readonly tailscaleImage: string;
    readonly tunnelImage: string;
    /** headscale's public URL, for --login-server. */
    readonly loginServer: string;
    /** The routers to run: routerInstances(hostname, replicas). */
    readonly routers: readonly RouterInstance[];
    /** The LAN subnets to advertise: validated config, never a cluster range. */
    readonly lanRoutes: readonly string[];
    /** The router's preauth key (secret). */
    readonly authKey: pulumi.Input<string>;
    /** Privileged tailscale container (tun device and forwarding on runc 1.2+). */
    readonly privileged: boolean;
    readonly tunnel: {
        readonly sshHost: string;
        readonly sshPort: number;
        /** The VPS's SSH host key, pinned in known_hosts. */
        readonly hostKey: string;
        /** Private key of the tunnel user (secret). */
        readonly privateKey: pulumi.Input<string>;
        readonly tunnelPort: number;
        /** headscale's in-cluster Service name and port. */
        readonly targetHost: pulumi.Input<string>;
        readonly targetPort: number;
    };
    /** For removing the node of a router that no longer runs (routers 1 and up). */
    readonly headscale: {
        readonly cli: HeadscaleCli;
        /** Not when headscale goes too (`pulumi destroy`): its data, kept by default, keeps the nodes. */
        readonly deletedWith: pulumi.Resource;
    };
}

const routerName = "subnet-router";
const component = "subnet-router";

/** One subnet router: its Kubernetes names and its node's name in headscale. */
export interface RouterInstance {
    readonly index: number;
    /** The Deployment's name, and its pods' name label: subnet-router, subnet-router-1, … */
    readonly name: string;
    /** The Secret where its tailscale keeps its state (TS_KUBE_SECRET). */
    readonly stateSecret: string;
    /** Its node's name in headscale: the configured hostname, then hostname-1, hostname-2, … */
    readonly nodeName: string;
    /** The labels that select its pods: its Deployment's selector. */
    readonly selector: Record<string, string>;
}

/**
 * The routers for `replicas`. Router 0 keeps the names a single router always had, so going
 * from one router to several (or back) never renames it: it keeps its node, key and routes.
 */
export function routerInstances(hostname: string, replicas: number): RouterInstance[] {
    return Array.from({ length: replicas }, (_, index) => {
        const name = index === 0 ? routerName : `${routerName}-${index}`;
        return { index, name, stateSecret: `${name}-state`, nodeName: index === 0 ? hostname : `${hostname}-${index}`, selector: selectorFor(name) };
    });
}

/** Labels that every router's pods carry, whichever router: for spreading them and for the disruption budget. */
const anyRouter = componentSelector(component);

const credentialsDir = "/etc/tunnel";
/** The tunnel container's ssh control socket: an emptyDir, as the root filesystem is read-only. */
const controlDir = "/run/tunnel";
/** Where the tailscale container, and no other, finds its service account token (containerboot's saPath). */
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
const healthPort = 9002;
/**
 * How long `pulumi up` waits for a router to be ready (Pulumi's own default for a Deployment),
 * and for how long an image may fail to pull before the up fails, naming it.
 */
export const routerStart = { timeoutSeconds: 600, pullGraceSeconds: 30 } as const;
const nobody = 65534;

export const removeNodeScript = fs.readFileSync(path.join(__dirname, "scripts", "remove-node.mjs"), "utf8");
export const waitRouterScript = fs.readFileSync(path.join(__dirname, "scripts", "wait-router.sh"), "utf8");

/**
 * The Pod Security level the routers' pods need, whatever routerPrivileged says: their tailscale
 * container adds NET_ADMIN and NET_RAW, which the baseline level refuses. The namespace carries it.
 */
export const routerPodSecurity = { "pod-security.kubernetes.io/enforce": "privileged" } as const;

/**
 * The subnet routers: each runs tailscale advertising the LAN routes (kernel networking) as a
 * node of its own, and ssh for the reverse tunnel that carries headscale to the VPS. With
 * several, one Deployment each (a router is an identity: its own state Secret and node name),
 * spread across the cluster's nodes, with a disruption budget that keeps one running; their
 * tunnels share the VPS's one port, held by one router at a time. Their Role lets tailscale
 * keep its state in its own Secrets and nothing else.
 */
export class SubnetRouter extends pulumi.ComponentResource {
    /** Router 0's Deployment name. */
    public readonly deploymentName: pulumi.Output<string>;
    /** One per router, in the order of args.routers. */
    public readonly deployments: k8s.apps.v1.Deployment[];
    /** Each router's wait until it is ready: what needs the router running waits for this. */
    public readonly started: command.local.Command[];

    constructor(name: string, args: SubnetRouterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:SubnetRouter", name, {}, opts);
        const parent = { parent: this };
        const labels = labelsFor(routerName, component);
        const ns = args.namespace;
        const credentials = `${routerName}-credentials`;

        const account = new k8s.core.v1.ServiceAccount(`${name}-serviceaccount`, {
            metadata: { name: routerName, namespace: ns, labels },
        }, parent);
        // What tailscale's containerboot needs for TS_KUBE_SECRET: create its state Secret
        // once, then read and write those Secrets (one per router); emit events. Nothing more.
        const role = new k8s.rbac.v1.Role(`${name}-role`, {
            metadata: { name: routerName, namespace: ns, labels },
            rules: [
                { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
                { apiGroups: [""], resources: ["secrets"], resourceNames: args.routers.map((r) => r.stateSecret), verbs: ["get", "update", "patch"] },
                { apiGroups: [""], resources: ["events"], verbs: ["get", "create", "patch"] },
            ],
        }, parent);
        new k8s.rbac.v1.RoleBinding(`${name}-rolebinding`, {
            metadata: { name: routerName, namespace: ns, labels },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
            subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace: ns }],
        }, parent);

        // One reusable key for every router: a rotation updates this Secret and restarts none.
        const secret = new k8s.core.v1.Secret(`${name}-credentials`, {
            metadata: { name: credentials, namespace: ns, labels },
            type: "Opaque",
            stringData: {
                TS_AUTHKEY: pulumi.secret(args.authKey),
                "tunnel-key": pulumi.secret(args.tunnel.privateKey),
                known_hosts: knownHostsLine(args.tunnel.sshHost, args.tunnel.sshPort, args.tunnel.hostKey),
            },
        }, parent);

        if (args.routers.length > 1) {
            // A node drain (an update's reboot) takes one router at a time.
            new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, {
                metadata: { name: routerName, namespace: ns, labels },
                spec: { minAvailable: 1, selector: { matchLabels: anyRouter } },
            }, parent);
        }

        const health = (periodSeconds: number, failureThreshold: number) => ({
            httpGet: { path: "/healthz", port: "health" },
            periodSeconds,
            failureThreshold,
            timeoutSeconds: 5,
        });
        const tunnel = pulumi.output(args.tunnel.targetHost).apply((targetHost) => tunnelCommand({
            sshHost: args.tunnel.sshHost,
            sshPort: args.tunnel.sshPort,
            tunnelPort: args.tunnel.tunnelPort,
            targetHost,
            targetPort: args.tunnel.targetPort,
            identityFile: `${credentialsDir}/id_ed25519`,
            knownHostsFile: `${credentialsDir}/known_hosts`,
            controlPath: `${controlDir}/ssh`,
        }));

        const routers = args.routers.map((router) => {
            const prefix = router.index === 0 ? name : `${name}-${router.index}`;
            const podLabels = labelsFor(router.name, component);
            // A router that goes (routerReplicas lowered) leaves headscale once its pod is gone:
            // the Deployment depends on this, so Pulumi deletes the Deployment first.
            const removal = router.index === 0 ? [] : [new command.local.Command(`${prefix}-node-removal`, {
                delete: commandLine(["node", "--input-type=module", "-", router.nodeName, router.stateSecret, args.headscale.cli.pod, "120", ...kubectlWords(args.headscale.cli)]),
                stdin: removeNodeScript,
                logging: "stdoutAndStderr",
            }, { ...parent, deletedWith: args.headscale.deletedWith })];
            const deployment = new k8s.apps.v1.Deployment(`${prefix}-deployment`, {
                metadata: {
                    name: router.name,
                    namespace: ns,
                    labels: podLabels,
                    // `${prefix}-started` waits for it instead of the provider, and fails at once on
                    // an image that cannot be pulled, where the provider would wait out its timeout.
                    annotations: { "pulumi.com/skipAwait": "true" },
                },
                spec: {
                    replicas: 1,
                    // Never two pods of one router: they would share one tailscale identity.
                    strategy: { type: "Recreate" },
                    selector: { matchLabels: router.selector },
                    template: {
                        metadata: { labels: podLabels },
                        spec: {
                            serviceAccountName: account.metadata.name,
                            // Its token goes to the tailscale container alone (the volume below):
                            // the tunnel container could otherwise read the state Secret, node key and all.
                            automountServiceAccountToken: false,
                            enableServiceLinks: false,
                            securityContext: { fsGroup: nobody, seccompProfile: { type: "RuntimeDefault" } },
                            // Preferred, not required: a one-node cluster still runs them all. The
                            // same with one router, so that changing routerReplicas never restarts router 0.
                            affinity: {
                                podAntiAffinity: {
                                    preferredDuringSchedulingIgnoredDuringExecution: [{
                                        weight: 100,
                                        podAffinityTerm: { labelSelector: { matchLabels: anyRouter }, topologyKey: "kubernetes.io/hostname" },
                                    }],
                                },
                            },
                            containers: [
                                {
                                    name: "tailscale",
                                    image: args.tailscaleImage,
                                    env: [
                                        { name: "TS_KUBE_SECRET", value: router.stateSecret },
                                        { name: "TS_USERSPACE", value: "false" },
                                        { name: "TS_ROUTES", value: args.lanRoutes.join(",") },
                                        { name: "TS_EXTRA_ARGS", value: `--login-server=${args.loginServer}` },
                                        { name: "TS_HOSTNAME", value: router.nodeName },
                                        // Logged in once, the node keeps its identity: a rotated key
                                        // updates the Secret without logging the router in again.
                                        { name: "TS_AUTH_ONCE", value: "true" },
                                        { name: "TS_AUTHKEY", valueFrom: { secretKeyRef: { name: secret.metadata.name, key: "TS_AUTHKEY" } } },
                                        { name: "TS_ENABLE_HEALTH_CHECK", value: "true" },
                                        // tailscaled uploads its logs to Tailscale Inc. unless told
                                        // not to; this overlay talks to no third party.
                                        { name: "TS_NO_LOGS_NO_SUPPORT", value: "true" },
                                        { name: "TS_LOCAL_ADDR_PORT", value: `[::]:${healthPort}` },
                                        // nftables where the node has no legacy iptables: the image
                                        // links iptables to iptables-legacy (as upstream's subnet.yaml).
                                        { name: "TS_DEBUG_FIREWALL_MODE", value: "auto" },
                                        // For containerboot's events on its own pod (else it turns them off).
                                        { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                                        { name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
                                    ],
                                    ports: [{ name: "health", containerPort: healthPort, protocol: "TCP" }],
                                    // /healthz answers 200 once the node has a tailnet address.
                                    readinessProbe: health(10, 3),
                                    livenessProbe: health(30, 10),
                                    resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { cpu: "1", memory: "256Mi" } },
                                    securityContext: {
                                        privileged: args.privileged,
                                        capabilities: { add: ["NET_ADMIN", "NET_RAW"] },
                                    },
                                    volumeMounts: [{ name: "kube-api-access", mountPath: serviceAccountDir, readOnly: true }],
                                },
                                {
                                    name: "tunnel",
                                    image: args.tunnelImage,
                                    command: tunnel,
                                    resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "200m", memory: "64Mi" } },
                                    securityContext: {
                                        runAsNonRoot: true,
                                        runAsUser: nobody,
                                        runAsGroup: nobody,
                                        allowPrivilegeEscalation: false,
                                        readOnlyRootFilesystem: true,
                                        capabilities: { drop: ["ALL"] },
                                    },
                                    volumeMounts: [
                                        { name: "tunnel", mountPath: credentialsDir, readOnly: true },
                                        { name: "control", mountPath: controlDir },
                                    ],
                                },
                            ],
                            volumes: [
                                {
                                    name: "tunnel",
                                    secret: {
                                        secretName: secret.metadata.name,
                                        // Group-readable for the tunnel user (fsGroup), no one else.
                                        defaultMode: 0o440,
                                        items: [{ key: "tunnel-key", path: "id_ed25519" }, { key: "known_hosts", path: "known_hosts" }],
                                    },
                                },
                                { name: "control", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
                                // What the ServiceAccount admission plugin would mount into every container.
                                {
                                    name: "kube-api-access",
                                    projected: {
                                        sources: [
                                            { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
                                            { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
                                            { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
                                        ],
                                    },
                                },
                            ],
                        },
                    },
                },
            // What the router waits for (the VPS being ready), its pod waits for.
            }, { ...parent, dependsOn: [...removal, ...dependencies(opts?.dependsOn)] });
            const started = new command.local.Command(`${prefix}-started`, {
                create: stdinScriptCommand([router.name, Object.entries(router.selector).map(([k, v]) => `${k}=${v}`).join(","),
                    String(routerStart.timeoutSeconds), String(routerStart.pullGraceSeconds), ...kubectlWords(args.headscale.cli)]),
                stdin: waitRouterScript,
                // Again whenever the Deployment is new or its spec changed (a rotated key in the
                // Secret changes neither, and restarts nothing).
                triggers: [deployment.metadata.uid, deployment.metadata.generation],
                logging: "stderr",
            }, { ...parent, dependsOn: [deployment] });
            return { deployment, started };
        });

        this.deployments = routers.map((r) => r.deployment);
        this.started = routers.map((r) => r.started);
        this.deploymentName = this.deployments[0].metadata.name;
        this.registerOutputs({ deploymentName: this.deploymentName });
    }
}

function dependencies(input: pulumi.Input<pulumi.Input<pulumi.Resource>[]> | pulumi.Input<pulumi.Resource> | undefined): pulumi.Input<pulumi.Resource>[] {
    if (input === undefined) return [];
    return Array.isArray(input) ? input : [input as pulumi.Input<pulumi.Resource>];
}
