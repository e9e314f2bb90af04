import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { maxRouterReplicas } from "../config/keys";
import { sshFingerprint } from "../config/rules";
import { ClusterCheck } from "../components/cluster";
import { HeadscaleServer } from "../components/headscale";
import { headscalePorts } from "../components/headscale/config";
import { routerInstances, routerPodSecurity, SubnetRouter } from "../components/router";
import { SshKeypair } from "../components/sshKeypair";
import { backupChroot, backupStoreDir, backupStoreUser } from "../components/vps/backupStore";
import { formatVersion, imageVersion } from "../config/upgrade";
import { VpsEdge } from "../components/vps";
import { HeadscaleCli } from "../components/keys/cli";
import { PreauthKey } from "../components/keys/preauthKey";
import { RouteApproval } from "../components/keys/routeApproval";
import { IssuedKey, StoredKey, UserKeys } from "../components/keys/userKeys";
import { routerTag } from "../components/headscale/policy";
import { headscaleName } from "../components/headscale";
import { rotationWindow, today } from "../config/clock";

/** What a user needs after `pulumi up` of the home stack. */
export interface HomeStackOutputs {
    readonly loginServer: string;
    readonly routerNodeName: string;
    readonly vpsHostKeyFingerprint: string;
    readonly tunnelPublicKey: pulumi.Output<string>;
    readonly namespace: pulumi.Output<string>;
    readonly headscaleService: pulumi.Output<string>;
    readonly routerDeployment: pulumi.Output<string>;
    readonly vpsHostKey: pulumi.Output<string>;
    readonly routerKeyId: pulumi.Output<string>;
    readonly routerKeyExpires: pulumi.Output<string>;
    readonly routerKeyNextRotation: string;
    readonly userKeys: Record<string, IssuedKey>;
    readonly githubSecretKeys: Record<string, StoredKey>;
    readonly headscaleVersion: string;
    readonly backupStore: string;
    readonly backupRecipient: pulumi.Output<string>;
    readonly backupIdentity: pulumi.Output<string>;
}

/**
 * The home stack: headscale and the subnet router in the home cluster, the edge on the VPS,
 * and the keys that tie them together.
 */
export function createHomeStack(config: StackConfig): HomeStackOutputs {
    // Every cluster resource goes through this provider, so the kubeconfig and context
    // come from the stack config rather than from whatever the shell happens to point at.
    const clusterAccess = { kubeconfig: config.kubeconfig || undefined, context: config.kubeContext || undefined };
    const cluster = new k8s.Provider("home-cluster", {
        ...clusterAccess,
        // Update Secrets and ConfigMaps in place. By default the provider replaces one whose
        // data changes, and as ours have fixed names it deletes it first, and with it whatever
        // uses it: a key rotation would delete and recreate the router's Deployment (a restart),
        // and a headscale config change the whole StatefulSet instead of rolling its pod.
        enableSecretMutable: true,
        enableConfigMapMutable: true,
    });
    const inCluster = { providers: { kubernetes: cluster } };
    // The namespace alone goes through this one. By default `pulumi destroy` leaves it (and with it
    // headscale's data volume and the router's state), so the next `pulumi up` finds it there and
    // must adopt it rather than fail with "already exists". Every other object that already
    // exists stays an error, which is what protects against a rename deleting something.
    const namespaceProvider = new k8s.Provider("home-cluster-namespace", { ...clusterAccess, upsertExistingObjects: true });
    // Nothing goes into the cluster until kubectl, with the same kubeconfig and context, has
    // reached it: an unreachable cluster is reported with the kubeconfig and context named.
    const clusterCheck = new ClusterCheck("home-cluster-check", { kubeconfig: config.kubeconfig, context: config.kubeContext, namespace: config.namespace });
    const loginServer = `https://${config.hostname}`;

    const tunnelKey = new SshKeypair("tunnel");
    const backupKey = new SshKeypair("backup-store");
    const sshHost = config.vpsSshHost || config.vpsIpv4;
    const routers = routerInstances(config.routerHostname, config.routerReplicas);

    const vps = new VpsEdge("vps", {
        connection: { host: sshHost, port: config.vpsSshPort, user: config.vpsSshUser, privateKey: config.vpsSshPrivateKey, hostKey: config.vpsHostKey },
        hostname: config.hostname,
        vpsIpv4: config.vpsIpv4,
        vpsIpv6: config.vpsIpv6,
        tunnelPort: config.tunnelPort,
        tunnelPublicKey: tunnelKey.publicKeyOpenssh,
        backupPublicKey: backupKey.publicKeyOpenssh,
        keepBackupsOnDestroy: config.keepDataOnDestroy,
        tls: config.tlsMode === "acme"
            ? { mode: "acme", email: config.acmeEmail }
            : { mode: "provided", certificate: config.tlsCertificate, privateKey: config.tlsPrivateKey },
    });

    const headscale = new HeadscaleServer("headscale", {
        namespace: config.namespace,
        image: config.headscaleImage,
        config: {
            hostname: config.hostname,
            tailnetIpv4Prefix: config.tailnetIpv4Prefix,
            tailnetIpv6Prefix: config.tailnetIpv6Prefix,
            vpsIpv4: config.vpsIpv4,
            vpsIpv6: config.vpsIpv6,
            trustedProxies: config.podCidrs,
            logLevel: config.logLevel,
            magicDns: config.magicDns,
            dnsBaseDomain: config.dnsBaseDomain,
            dnsNameservers: config.dnsNameservers,
            dnsSplit: config.dnsSplit,
            haProbe: { intervalSeconds: config.routerProbeIntervalSeconds, timeoutSeconds: config.routerProbeTimeoutSeconds },
        },
        policy: { lanRoutes: config.lanRoutes, extraTags: config.userKeys.flatMap((k) => k.tags ?? []) },
        storageSize: config.storageSize,
        storageClass: config.storageClass,
        metricsNamespace: config.metricsNamespace,
        // Every router a stack may run, not only today's: the policy stays the same whatever
        // routerReplicas is, so a router being removed keeps its way to headscale while it
        // hands the tunnel over (Pulumi updates the policy first and deletes the Deployment last).
        routerSelectors: routerInstances(config.routerHostname, maxRouterReplicas).map((r) => r.selector),
        // The Pod Security level the routers' pods need, privileged or not.
        namespaceLabels: routerPodSecurity,
        backups: {
            schedule: config.backupSchedule,
            jobs: {
                image: config.backupImage,
                store: { host: sshHost, port: config.vpsSshPort, user: backupStoreUser, dir: backupStoreDir },
                keep: config.backupKeep,
            },
            storePrivateKey: backupKey.privateKeyOpenssh,
            identity: config.backupIdentity,
            storeHostKey: config.vpsHostKey,
            restore: config.restoreBackup,
            kubeconfig: config.kubeconfig,
            context: config.kubeContext,
            // The backup before an upgrade goes to the VPS's backup account.
            after: [vps],
        },
        keepDataOnDestroy: config.keepDataOnDestroy,
        namespaceProvider,
    }, { ...inCluster, dependsOn: [clusterCheck] });

    // The headscale CLI in the running pod, through the same kubeconfig and context.
    const cli: HeadscaleCli = { kubeconfig: config.kubeconfig, context: config.kubeContext, namespace: config.namespace, pod: `${headscaleName}-0` };
    const date = today();
    const routerWindow = rotationWindow(date, config.routerKeyRotationDays);
    const routerKey = new PreauthKey("router-key", {
        cli,
        tags: [routerTag],
        reusable: true,
        ephemeral: false,
        lifetimeDays: config.routerKeyLifetimeDays,
        rotationWindow: routerWindow.start,
    }, { dependsOn: headscale.ready });

    const router = new SubnetRouter("router", {
        namespace: headscale.namespace,
        tailscaleImage: config.tailscaleImage,
        tunnelImage: config.tunnelImage,
        loginServer,
        routers,
        lanRoutes: config.lanRoutes,
        authKey: routerKey.key,
        privileged: config.routerPrivileged,
        tunnel: {
            sshHost,
            sshPort: config.vpsSshPort,
            hostKey: config.vpsHostKey,
            privateKey: tunnelKey.privateKeyOpenssh,
            tunnelPort: config.tunnelPort,
            targetHost: headscale.serviceHost,
            targetPort: headscalePorts.http,
        },
        headscale: { cli, deletedWith: headscale.statefulSet },
    // Not before the VPS is ready: autossh would knock on a VPS with no tunnel user yet (failed
    // logins that fail2ban counts against the home address) and tailscale would crash-loop
    // until nginx answers.
    }, { ...inCluster, dependsOn: [vps] });

    // Once each router is ready (registered), approve exactly its LAN routes.
    const approvals = routers.map((r, i) => {
        const name = i === 0 ? "router-routes" : `router-${i}-routes`;
        return new RouteApproval(name, { cli, nodeName: r.nodeName, routes: config.lanRoutes }, { dependsOn: [router.started[i]] });
    });

    const userKeys = new UserKeys("user-keys", {
        cli,
        keys: config.userKeys,
        loginServer,
        date,
        rotationDays: config.routerKeyRotationDays,
        // A key kept in a GitHub secret is written last: if that fails, the router's key and
        // routes are already done.
        storeAfter: [router, ...approvals],
    }, { dependsOn: headscale.ready });

    return {
        loginServer,
        routerNodeName: config.routerHostname,
        vpsHostKeyFingerprint: sshFingerprint(config.vpsHostKey),
        tunnelPublicKey: tunnelKey.publicKeyOpenssh,
        namespace: headscale.namespace,
        headscaleService: headscale.serviceHost,
        routerDeployment: router.deploymentName,
        vpsHostKey: vps.hostKey,
        routerKeyId: routerKey.keyId,
        routerKeyExpires: routerKey.expiration,
        routerKeyNextRotation: routerWindow.next,
        userKeys: userKeys.issued,
        githubSecretKeys: userKeys.stored,
        headscaleVersion: formatVersion(imageVersion(config.headscaleImage)!),
        backupStore: `${backupStoreUser}@${sshHost}:${backupChroot}${backupStoreDir}`,
        backupRecipient: headscale.backups.recipient,
        backupIdentity: headscale.backups.identity,
    };
}
