// The cluster half under the mock runtime: headscale and the subnet router, checked field by
// field and against the Kubernetes schema.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, it } from "node:test";
import YAML from "yaml";
import { cidrsOverlap, parseCidr } from "../config/net";
import { waitRouterScript } from "../components/router";
import { holdTunnelScript } from "../components/router/tunnel";
import { resourceArtifacts } from "../plan/artifacts";
import { Evaluation, evaluate } from "./helpers/evaluate";
import { validateManifest } from "./helpers/kubernetesSchema";
import { exampleConfig } from "./helpers/stack";

let run: Evaluation;

const container = (spec: any, name: string) => spec.template.spec.containers.find((c: any) => c.name === name);
const env = (c: any) => Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

describe("the home cluster", () => {
    before(async () => {
        run = await evaluate(exampleConfig({ set: { storageClass: "fast-ssd", storageSize: "2Gi", metricsNamespace: "monitoring" } }));
        assert.equal(run.error, undefined, run.error?.message);
    });

    it("consists of exactly these resources", () => {
        const cluster = run.resources.filter((r) => r.type.startsWith("kubernetes:")).map((r) => `${r.type.split(":").pop()} ${r.name}`).sort();
        assert.deepEqual(cluster, [
            "ConfigMap headscale-backups-scripts",
            "ConfigMap headscale-config",
            "CronJob headscale-backups-cronjob",
            "Deployment router-deployment",
            "Namespace headscale-namespace",
            "NetworkPolicy headscale-networkpolicy",
            "Role router-role",
            "RoleBinding router-rolebinding",
            "Secret headscale-backups-credentials",
            "Secret router-credentials",
            "Service headscale-service",
            "ServiceAccount router-serviceaccount",
            "StatefulSet headscale-statefulset",
        ]);
        const component = (name: string) => run.resources.find((r) => r.name === name)?.urn;
        const backups = (name: string) => name.startsWith("headscale-backups-");
        for (const r of run.resources.filter((x) => x.name.startsWith("headscale-") && !backups(x.name))) assert.equal(r.parent, component("headscale"), r.name);
        for (const r of run.resources.filter((x) => backups(x.name))) assert.equal(r.parent, component("headscale-backups"), r.name);
        assert.equal(run.resources.find((r) => r.name === "headscale-backups")?.parent, component("headscale"));
        for (const r of run.resources.filter((x) => x.type.startsWith("kubernetes:") && x.name.startsWith("router-"))) assert.equal(r.parent, component("router"), r.name);
    });

    it("renders every manifest the plan writes valid against the Kubernetes schema", async () => {
        const manifests = run.resources.flatMap(resourceArtifacts).filter((a) => a.kind === "kubernetes-manifest");
        assert.equal(manifests.length, 13);
        for (const a of manifests) await assert.doesNotReject(validateManifest(YAML.parse(a.content)), a.path);
    });

    it("has a schema check that refuses a broken manifest (so the check above can fail)", async () => {
        const statefulSet = YAML.parse(run.resources.flatMap(resourceArtifacts).find((a) => a.path === "k8s/statefulset-headscale.yaml")!.content);
        await assert.rejects(validateManifest({ ...statefulSet, spec: { ...statefulSet.spec, replicas: "one" } }), /replicas must be integer/);
        await assert.rejects(validateManifest({ ...statefulSet, kind: "StatefulSets" }), /kubernetes-models has no apps\/v1 StatefulSets|Cannot find module/);
    });

    it("creates the namespace from config", () => {
        assert.equal(run.inputs("headscale-namespace").metadata.name, "overlay");
        assert.equal(run.inputs("headscale-namespace").metadata.labels["pod-security.kubernetes.io/enforce"], "privileged");
    });

    it("labels the namespace for the privileged Pod Security level even with routerPrivileged false: the router adds NET_ADMIN and NET_RAW, which baseline refuses", async () => {
        const unprivileged = await evaluate(exampleConfig({ set: { routerPrivileged: false } }));
        assert.equal(unprivileged.error, undefined, unprivileged.error?.message);
        const ts = container(unprivileged.inputs("router-deployment").spec, "tailscale");
        assert.equal(ts.securityContext.privileged, false);
        assert.deepEqual(ts.securityContext.capabilities.add, ["NET_ADMIN", "NET_RAW"]);
        assert.equal(unprivileged.inputs("headscale-namespace").metadata.labels["pod-security.kubernetes.io/enforce"], "privileged");
    });

    it("puts config.yaml and the policy in the ConfigMap", () => {
        const data = run.inputs("headscale-config").data;
        assert.deepEqual(Object.keys(data).sort(), ["config.yaml", "policy.hujson"]);
        const config = YAML.parse(data["config.yaml"]);
        assert.equal(config.server_url, "https://headscale.example.com");
        assert.equal(config.policy.path, "/etc/headscale/policy.hujson");
    });

    it("runs headscale as one hardened replica with its data on a volume", () => {
        const spec = run.inputs("headscale-statefulset").spec;
        assert.equal(spec.replicas, 1);
        const pod = spec.template.spec;
        const hs = container(spec, "headscale");
        assert.equal(hs.image, "ghcr.io/juanfont/headscale:0.29.2");
        assert.deepEqual(hs.args, ["serve"]);
        assert.deepEqual(hs.volumeMounts.find((m: any) => m.name === "config"), { name: "config", mountPath: "/etc/headscale", readOnly: true });
        assert.equal(hs.volumeMounts.find((m: any) => m.name === "data").mountPath, "/var/lib/headscale");
        assert.equal(hs.volumeMounts.find((m: any) => m.name === "run").mountPath, "/var/run/headscale");
        assert.deepEqual(pod.volumes.find((v: any) => v.name === "run"), { name: "run", emptyDir: {} });
        const claim = spec.volumeClaimTemplates[0];
        assert.equal(claim.metadata.name, "data");
        assert.equal(claim.spec.storageClassName, "fast-ssd");
        assert.equal(claim.spec.resources.requests.storage, "2Gi");
        for (const probe of [hs.livenessProbe, hs.readinessProbe]) assert.deepEqual(probe.httpGet, { path: "/health", port: "http" });
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.deepEqual(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
        assert.equal(hs.securityContext.readOnlyRootFilesystem, true);
        assert.equal(hs.securityContext.allowPrivilegeEscalation, false);
        assert.deepEqual(hs.securityContext.capabilities, { drop: ["ALL"] });
        assert.ok(hs.resources.requests.cpu && hs.resources.requests.memory && hs.resources.limits.memory);
        assert.equal(pod.automountServiceAccountToken, false);
    });

    it("exposes only http 8080 through a ClusterIP Service", () => {
        const spec = run.inputs("headscale-service").spec;
        assert.equal(spec.type, "ClusterIP");
        assert.deepEqual(spec.ports, [{ name: "http", port: 8080, targetPort: "http", protocol: "TCP" }]);
    });

    it("admits only the router to headscale, and metrics only from the configured namespace", () => {
        const spec = run.inputs("headscale-networkpolicy").spec;
        assert.deepEqual(spec.policyTypes, ["Ingress"]);
        const routerLabels = run.inputs("router-deployment").spec.template.metadata.labels;
        const [http, metrics] = spec.ingress;
        assert.deepEqual(http.ports, [{ port: 8080, protocol: "TCP" }]);
        for (const [k, v] of Object.entries(http.from[0].podSelector.matchLabels)) assert.equal(routerLabels[k], v, "selects the router pod");
        assert.deepEqual(metrics.from, [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }]);
        assert.deepEqual(metrics.ports, [{ port: 9090, protocol: "TCP" }]);
        assert.equal(spec.ingress.length, 2);
    });

    it("lets the router's Role touch only its own state Secret, plus events", () => {
        assert.deepEqual(run.inputs("router-role").rules, [
            { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
            { apiGroups: [""], resources: ["secrets"], resourceNames: ["subnet-router-state"], verbs: ["get", "update", "patch"] },
            { apiGroups: [""], resources: ["events"], verbs: ["get", "create", "patch"] },
        ]);
        const binding = run.inputs("router-rolebinding");
        assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "subnet-router", namespace: "overlay" }]);
        assert.equal(binding.roleRef.name, "subnet-router");
    });

    it("keeps the auth key, tunnel key and pinned host key in the router's Secret", () => {
        const secret = run.resources.find((r) => r.name === "router-credentials");
        const stringData = (secret?.inputs as any).stringData;
        // The SDK marks all of stringData secret; look inside only for the non-secret known_hosts.
        const known = stringData.value.known_hosts;
        assert.equal(known, "203.0.113.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf6nxOFGitlZ5GdkZE3EqOVMa2gFlnikrhRaOG3osF2\n");
        assert.deepEqual(Object.keys(stringData.value).sort(), ["TS_AUTHKEY", "known_hosts", "tunnel-key"]);
        assert.deepEqual(run.inputs("router-credentials").stringData, "[secret]");
    });

    it("runs tailscale in kernel mode advertising the LAN routes only, never with --advertise-tags", () => {
        const spec = run.inputs("router-deployment").spec;
        const ts = container(spec, "tailscale");
        const vars = env(ts);
        assert.equal(vars.TS_ROUTES, "192.168.1.0/24");
        assert.equal(vars.TS_USERSPACE, "false");
        assert.equal(vars.TS_KUBE_SECRET, "subnet-router-state");
        assert.equal(vars.TS_EXTRA_ARGS, "--login-server=https://headscale.example.com");
        assert.equal(vars.TS_HOSTNAME, "home-router");
        assert.equal(vars.TS_AUTH_ONCE, "true");
        assert.deepEqual(vars.TS_AUTHKEY, { secretKeyRef: { name: "subnet-router-credentials", key: "TS_AUTHKEY" } });
        assert.equal(vars.TS_ENABLE_HEALTH_CHECK, "true");
        assert.equal(vars.TS_NO_LOGS_NO_SUPPORT, "true", "no log uploads to Tailscale Inc.");
        // As upstream's docs/k8s/subnet.yaml: nftables where the node has no legacy iptables,
        // and the pod's name and UID, without which containerboot turns its events off.
        assert.equal(vars.TS_DEBUG_FIREWALL_MODE, "auto");
        assert.deepEqual(vars.POD_NAME, { fieldRef: { fieldPath: "metadata.name" } });
        assert.deepEqual(vars.POD_UID, { fieldRef: { fieldPath: "metadata.uid" } });
        assert.doesNotMatch(JSON.stringify(spec), /advertise-tags/);
        for (const probe of [ts.readinessProbe, ts.livenessProbe]) assert.deepEqual(probe.httpGet, { path: "/healthz", port: "health" });
        assert.deepEqual(ts.securityContext.capabilities.add, ["NET_ADMIN", "NET_RAW"]);
        assert.equal(ts.securityContext.privileged, true);
        assert.equal(spec.strategy.type, "Recreate");
        assert.equal(spec.replicas, 1);
    });

    it("waits for the router itself (wait-router.sh), again whenever its Deployment changes, and approves its routes after that", () => {
        assert.equal(run.inputs("router-deployment").metadata.annotations["pulumi.com/skipAwait"], "true", "the provider does not wait for it");
        const started = run.inputs("router-started");
        assert.equal(started.stdin, waitRouterScript);
        assert.equal(started.create, "bash -s -- subnet-router app.kubernetes.io/name=subnet-router,app.kubernetes.io/part-of=overlay 600 30 kubectl --namespace=overlay");
        assert.equal(started.triggers.length, 2, "the Deployment's uid and generation");
        const urn = (name: string) => run.resources.find((r) => r.name === name)!.urn;
        assert.ok(run.resources.find((r) => r.name === "router-started")!.dependencies.includes(urn("router-deployment")));
        assert.ok(run.resources.find((r) => r.name === "router-routes-find-node")!.dependencies.includes(urn("router-started")));
    });

    it("mounts a service account token into the tailscale container only: the tunnel container gets none", () => {
        const pod = run.inputs("router-deployment").spec.template.spec;
        assert.equal(pod.automountServiceAccountToken, false);
        const tokenVolumes = pod.volumes.filter((v: any) => v.projected?.sources.some((s: any) => s.serviceAccountToken)).map((v: any) => v.name);
        assert.deepEqual(tokenVolumes, ["kube-api-access"]);
        const mountsOf = (name: string) => (container(run.inputs("router-deployment").spec, name).volumeMounts ?? []) as any[];
        assert.deepEqual(mountsOf("tailscale"), [{ name: "kube-api-access", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true }]);
        assert.ok(!mountsOf("tunnel").some((m) => m.name === "kube-api-access" || m.mountPath.startsWith("/var/run/secrets")), JSON.stringify(mountsOf("tunnel")));
    });

    it("holds the reverse tunnel with hold-tunnel.sh and ssh, non-root, against the pinned host key, with nothing from the image's environment or ssh_config", () => {
        const spec = run.inputs("router-deployment").spec;
        const tunnel = container(spec, "tunnel");
        assert.match(tunnel.image, /^docker\.io\/library\/buildpack-deps:trixie-scm@sha256:[0-9a-f]{64}$/, "an official, maintained image, pinned by digest");
        const argv: string[] = tunnel.command;
        assert.deepEqual(argv.slice(0, 4), ["sh", "-c", holdTunnelScript, "hold-tunnel"]);
        const [retry, maxWait, heartbeat, control, forward, destination, ...master] = argv.slice(4);
        assert.deepEqual([retry, maxWait, heartbeat, control, forward, destination], ["3", "60", "5", "/run/tunnel/ssh", "127.0.0.1:8080:headscale.overlay.svc:8080", "tunnel@203.0.113.10"]);
        assert.deepEqual(master.slice(0, 4), ["ssh", "-T", "-F", "/dev/null"], "a session (its input is the heartbeat) with no TTY");
        assert.ok(!master.includes("-R"), "the master holds no forward of its own: the script asks for it");
        const options = master.flatMap((a, i) => (master[i - 1] === "-o" ? [a] : []));
        for (const o of ["ServerAliveInterval=5", "ServerAliveCountMax=3", "ExitOnForwardFailure=no", "StrictHostKeyChecking=yes", "UserKnownHostsFile=/etc/tunnel/known_hosts",
            "ControlMaster=auto", "ControlPath=/run/tunnel/ssh"]) {
            assert.ok(options.includes(o), `missing -o ${o}`);
        }
        assert.ok(!options.some((o) => /StrictHostKeyChecking=(no|accept-new)/.test(o)));
        assert.equal(master[master.length - 1], "tunnel@203.0.113.10");
        assert.equal(tunnel.env, undefined, "the tunnel reads no environment");
        assert.equal(tunnel.securityContext.runAsNonRoot, true);
        assert.equal(tunnel.securityContext.runAsUser, 65534);
        assert.equal(tunnel.securityContext.readOnlyRootFilesystem, true);
        const volume = spec.template.spec.volumes.find((v: any) => v.name === "tunnel");
        assert.equal(volume.secret.defaultMode, 0o440);
        assert.deepEqual(spec.template.spec.volumes.find((v: any) => v.name === "control"), { name: "control", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } });
    });
});

describe("the headscale rollout checksum", () => {
    const checksum = (r: Evaluation) => r.inputs("headscale-statefulset").spec.template.metadata.annotations["overlay/config-sha256"];

    it("is the SHA-256 of config and policy", async () => {
        const r = await evaluate(exampleConfig());
        const data = r.inputs("headscale-config").data;
        assert.equal(checksum(r), createHash("sha256").update(data["config.yaml"] + data["policy.hujson"]).digest("hex"));
    });

    it("changes with the policy or the config, and not with the router", async () => {
        const base = checksum(await evaluate(exampleConfig()));
        assert.equal(checksum(await evaluate(exampleConfig())), base, "same config, same checksum");
        assert.notEqual(checksum(await evaluate(exampleConfig({ set: { lanRoutes: ["192.168.1.0/24", "192.168.7.0/24"] } }))), base, "policy change");
        assert.notEqual(checksum(await evaluate(exampleConfig({ set: { logLevel: "debug" } }))), base, "config change");
        assert.equal(checksum(await evaluate(exampleConfig({ set: { tailscaleImage: "ghcr.io/tailscale/tailscale:v1.104.6", routerHostname: "gw" } }))), base);
    });
});

describe("whatever the config", () => {
    it("never advertises, approves or opens a cluster range (80 random route sets through the program)", async () => {
        let seed = 7;
        const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
        const candidates = ["10.42.0.0/16", "10.42.7.0/24", "10.43.0.0/16", "10.0.0.0/8", "100.64.0.0/10", "100.100.0.0/16",
            "192.168.1.0/24", "192.168.2.0/24", "172.16.0.0/12", "fd7a:115c:a1e0::/48", "2001:db8:1::/64", "0.0.0.0/0"];
        const cluster = [parseCidr("10.42.0.0/16")!, parseCidr("10.43.0.0/16")!, parseCidr("100.64.0.0/10")!, parseCidr("fd7a:115c:a1e0::/48")!];
        let accepted = 0;
        for (let i = 0; i < 80; i++) {
            const routes = [...new Set(Array.from({ length: 1 + (next() % 3) }, () => candidates[next() % candidates.length]))];
            const r = await evaluate(exampleConfig({ set: { lanRoutes: routes } }));
            if (r.error) {
                assert.equal(r.resources.length, 0);
                continue;
            }
            accepted++;
            const advertised = env(container(r.inputs("router-deployment").spec, "tailscale")).TS_ROUTES.split(",");
            const policyText = r.inputs("headscale-config").data["policy.hujson"];
            const p = JSON.parse(policyText.slice(policyText.indexOf("{")));
            const approved = Object.keys(p.autoApprovers.routes);
            const opened = p.acls.flatMap((a: any) => a.dst).filter((d: string) => /^[0-9a-f.:]+\/\d+:\*$/.test(d)).map((d: string) => d.slice(0, -2));
            for (const route of [...advertised, ...approved, ...opened]) {
                for (const c of cluster) assert.ok(!cidrsOverlap(parseCidr(route)!, c), `${route} reaches ${c.text} (routes ${routes})`);
            }
        }
        assert.ok(accepted > 5 && accepted < 80, `the sample should mix accepted and refused configs (accepted ${accepted})`);
    });
});
