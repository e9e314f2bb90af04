import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { labelsFor, selectorFor } from "../labels";
import { autosshCommand, autosshEnvironment, knownHostsLine } from "./tunnel";

export interface SubnetRouterArgs {
    readonly namespace: pulumi.Input<string>;
    readonly tailscaleImage: string;
    readonly tunnelImage: string;
    /** headscale's public URL, for --login-server. */
    readonly loginServer: string;
    /** Node name in headscale. */
    readonly hostname: string;
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
}

export const routerName = "subnet-router";
/** Pod labels of the router; headscale's NetworkPolicy admits exactly these. */
export const routerSelector = selectorFor(routerName);

const credentialsDir = "/etc/tunnel";
const healthPort = 9002;
const nobody = 65534;

/**
 * The subnet router: tailscale advertising the LAN routes (kernel networking), and autossh
 * holding the reverse tunnel that carries headscale to the VPS. Its Role lets tailscale keep
 * its state in one Secret and nothing else.
 */
export class SubnetRouter extends pulumi.ComponentResource {
    public readonly deploymentName: pulumi.Output<string>;
    public readonly deployment: k8s.apps.v1.Deployment;

    constructor(name: string, args: SubnetRouterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:SubnetRouter", name, {}, opts);
        const parent = { parent: this };
        const labels = labelsFor(routerName, "subnet-router");
        const ns = args.namespace;
        const stateSecret = `${routerName}-state`;
        const credentials = `${routerName}-credentials`;

        const account = new k8s.core.v1.ServiceAccount(`${name}-serviceaccount`, {
            metadata: { name: routerName, namespace: ns, labels },
        }, parent);
        // What tailscale's containerboot needs for TS_KUBE_SECRET: create its state Secret
        // once, then read and write that one Secret; emit events. Nothing more.
        const role = new k8s.rbac.v1.Role(`${name}-role`, {
            metadata: { name: routerName, namespace: ns, labels },
            rules: [
                { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
                { apiGroups: [""], resources: ["secrets"], resourceNames: [stateSecret], verbs: ["get", "update", "patch"] },
                { apiGroups: [""], resources: ["events"], verbs: ["get", "create", "patch"] },
            ],
        }, parent);
        new k8s.rbac.v1.RoleBinding(`${name}-rolebinding`, {
            metadata: { name: routerName, namespace: ns, labels },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
            subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace: ns }],
        }, parent);

        const secret = new k8s.core.v1.Secret(`${name}-credentials`, {
            metadata: { name: credentials, namespace: ns, labels },
            type: "Opaque",
            stringData: {
                TS_AUTHKEY: pulumi.secret(args.authKey),
                "tunnel-key": pulumi.secret(args.tunnel.privateKey),
                known_hosts: knownHostsLine(args.tunnel.sshHost, args.tunnel.sshPort, args.tunnel.hostKey),
            },
        }, parent);

        const health = (periodSeconds: number, failureThreshold: number) => ({
            httpGet: { path: "/healthz", port: "health" },
            periodSeconds,
            failureThreshold,
            timeoutSeconds: 5,
        });
        const deployment = new k8s.apps.v1.Deployment(`${name}-deployment`, {
            metadata: { name: routerName, namespace: ns, labels },
            spec: {
                replicas: 1,
                // Never two: they would share one tailscale identity and fight for the tunnel port.
                strategy: { type: "Recreate" },
                selector: { matchLabels: routerSelector },
                template: {
                    metadata: { labels },
                    spec: {
                        serviceAccountName: account.metadata.name,
                        enableServiceLinks: false,
                        securityContext: { fsGroup: nobody, seccompProfile: { type: "RuntimeDefault" } },
                        containers: [
                            {
                                name: "tailscale",
                                image: args.tailscaleImage,
                                env: [
                                    { name: "TS_KUBE_SECRET", value: stateSecret },
                                    { name: "TS_USERSPACE", value: "false" },
                                    { name: "TS_ROUTES", value: args.lanRoutes.join(",") },
                                    { name: "TS_EXTRA_ARGS", value: `--login-server=${args.loginServer}` },
                                    { name: "TS_HOSTNAME", value: args.hostname },
                                    // Logged in once, the node keeps its identity: a rotated key
                                    // updates the Secret without logging the router in again.
                                    { name: "TS_AUTH_ONCE", value: "true" },
                                    { name: "TS_AUTHKEY", valueFrom: { secretKeyRef: { name: secret.metadata.name, key: "TS_AUTHKEY" } } },
                                    { name: "TS_ENABLE_HEALTH_CHECK", value: "true" },
                                    // tailscaled uploads its logs to Tailscale Inc. unless told
                                    // not to; this overlay talks to no third party.
                                    { name: "TS_NO_LOGS_NO_SUPPORT", value: "true" },
                                    { name: "TS_LOCAL_ADDR_PORT", value: `[::]:${healthPort}` },
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
                            },
                            {
                                name: "tunnel",
                                image: args.tunnelImage,
                                command: pulumi.output(args.tunnel.targetHost).apply((targetHost) =>
                                    autosshCommand({
                                        sshHost: args.tunnel.sshHost,
                                        sshPort: args.tunnel.sshPort,
                                        tunnelPort: args.tunnel.tunnelPort,
                                        targetHost,
                                        targetPort: args.tunnel.targetPort,
                                        identityFile: `${credentialsDir}/id_ed25519`,
                                        knownHostsFile: `${credentialsDir}/known_hosts`,
                                    })),
                                env: Object.entries(autosshEnvironment).map(([k, v]) => ({ name: k, value: v })),
                                resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "200m", memory: "64Mi" } },
                                securityContext: {
                                    runAsNonRoot: true,
                                    runAsUser: nobody,
                                    runAsGroup: nobody,
                                    allowPrivilegeEscalation: false,
                                    readOnlyRootFilesystem: true,
                                    capabilities: { drop: ["ALL"] },
                                },
                                volumeMounts: [{ name: "tunnel", mountPath: credentialsDir, readOnly: true }],
                            },
                        ],
                        volumes: [{
                            name: "tunnel",
                            secret: {
                                secretName: secret.metadata.name,
                                // Group-readable for the tunnel user (fsGroup), no one else.
                                defaultMode: 0o440,
                                items: [{ key: "tunnel-key", path: "id_ed25519" }, { key: "known_hosts", path: "known_hosts" }],
                            },
                        }],
                    },
                },
            },
        // What the router waits for (the VPS being ready), its pod waits for.
        }, { ...parent, dependsOn: opts?.dependsOn });

        this.deployment = deployment;
        this.deploymentName = deployment.metadata.name;
        this.registerOutputs({ deploymentName: this.deploymentName });
    }
}
