// Several subnet routers (routerReplicas) under the mock runtime: each its own node and state
// Secret, spread and kept available, one key for all, every node's routes approved, a tunnel
// that one router holds at a time, headscale's HA probe configured, and a router that goes
// removed from headscale. One router stays exactly as it was.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import YAML from "yaml";
import { resourceArtifacts } from "../plan/artifacts";
import { Evaluation, evaluate } from "./helpers/evaluate";
import { validateManifest } from "./helpers/kubernetesSchema";
import { exampleConfig } from "./helpers/stack";

let one: Evaluation;
let three: Evaluation;

const container = (spec: any, name: string) => spec.template.spec.containers.find((c: any) => c.name === name);
const env = (c: any) => Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
const deployments = ["router-deployment", "router-1-deployment", "router-2-deployment"];
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const headscaleConfig = (run: Evaluation) => YAML.parse(run.inputs("headscale-config").data["config.yaml"]);
const podLabels = (run: Evaluation, name: string) => run.inputs(name).spec.template.metadata.labels;

describe("routerReplicas", () => {
    before(async () => {
        one = await evaluate(exampleConfig());
        three = await evaluate(exampleConfig({ set: { routerReplicas: 3, routerProbeIntervalSeconds: 6, routerProbeTimeoutSeconds: 2 } }));
        assert.equal(one.error, undefined, one.error?.message);
        assert.equal(three.error, undefined, three.error?.message);
    });

    it("adds, for each router after the first, a Deployment, its wait until ready, a route approval and a node removal; a disruption budget once there are two", () => {
        const names = (run: Evaluation) => new Set(run.resources.map((r) => r.name));
        const added = [...names(three)].filter((n) => !names(one).has(n)).sort();
        assert.deepEqual(added, [
            "router-1-deployment", "router-1-node-removal", "router-1-routes", "router-1-routes-approve", "router-1-routes-find-node", "router-1-started",
            "router-2-deployment", "router-2-node-removal", "router-2-routes", "router-2-routes-approve", "router-2-routes-find-node", "router-2-started",
            "router-pdb",
        ]);
        assert.deepEqual([...names(one)].filter((n) => !names(three).has(n)), [], "router 0 keeps every name it had");
    });

    it("names each router's node, Deployment and state Secret after its number; router 0 keeps the single router's names", () => {
        const identity = deployments.map((d) => {
            const spec = three.inputs(d).spec;
            const vars = env(container(spec, "tailscale"));
            return [three.inputs(d).metadata.name, vars.TS_HOSTNAME, vars.TS_KUBE_SECRET];
        });
        assert.deepEqual(identity, [
            ["subnet-router", "home-router", "subnet-router-state"],
            ["subnet-router-1", "home-router-1", "subnet-router-1-state"],
            ["subnet-router-2", "home-router-2", "subnet-router-2-state"],
        ]);
        for (const d of deployments) {
            const vars = env(container(three.inputs(d).spec, "tailscale"));
            assert.equal(vars.TS_ROUTES, "192.168.1.0/24", `${d} advertises the same routes`);
            assert.deepEqual(vars.TS_AUTHKEY, { secretKeyRef: { name: "subnet-router-credentials", key: "TS_AUTHKEY" } }, `${d} uses the one reusable key`);
            assert.equal(three.inputs(d).spec.strategy.type, "Recreate");
        }
    });

    it("lets the Role reach exactly the routers' state Secrets", () => {
        assert.deepEqual(three.inputs("router-role").rules[1].resourceNames, ["subnet-router-state", "subnet-router-1-state", "subnet-router-2-state"]);
    });

    it("gives each Deployment a selector that matches its own pods only, and admits every router's pods to headscale with one NetworkPolicy whatever their number", () => {
        for (const d of deployments) {
            const selector = three.inputs(d).spec.selector.matchLabels;
            assert.deepEqual(deployments.filter((other) => matches(selector, podLabels(three, other))), [d], `${d}'s selector`);
        }
        const from = three.inputs("headscale-networkpolicy").spec.ingress[0].from.map((p: any) => p.podSelector.matchLabels);
        assert.equal(from.length, 5, "every router a stack may run");
        for (const d of deployments) assert.ok(from.some((s: Record<string, string>) => matches(s, podLabels(three, d))), `${d} reaches headscale`);
        // A change of routerReplicas leaves it as it is: a router being removed keeps its way to
        // headscale while it hands the tunnel over (Pulumi deletes the Deployment last).
        assert.deepEqual(one.inputs("headscale-networkpolicy"), three.inputs("headscale-networkpolicy"));
    });

    it("spreads the routers across nodes (preferred) and keeps one available through a drain", () => {
        for (const d of deployments) {
            const [term] = three.inputs(d).spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution;
            assert.equal(term.podAffinityTerm.topologyKey, "kubernetes.io/hostname");
            for (const other of deployments) assert.ok(matches(term.podAffinityTerm.labelSelector.matchLabels, podLabels(three, other)), `${d} avoids ${other}`);
        }
        const pdb = three.inputs("router-pdb").spec;
        assert.equal(pdb.minAvailable, 1);
        assert.deepEqual(deployments.filter((d) => matches(pdb.selector.matchLabels, podLabels(three, d))), deployments);
    });

    it("renders every manifest valid against the Kubernetes schema", async () => {
        const manifests = three.resources.flatMap(resourceArtifacts).filter((a) => a.kind === "kubernetes-manifest");
        assert.equal(manifests.length, 16);
        for (const a of manifests) await assert.doesNotReject(validateManifest(YAML.parse(a.content)), a.path);
    });

    it("gives router 0 the same Deployment whatever the number of routers, so that changing it never restarts router 0", () => {
        assert.deepEqual(three.inputs("router-deployment"), one.inputs("router-deployment"));
    });

    it("runs the same tunnel command in every router", () => {
        const commands = deployments.map((d) => JSON.stringify(container(three.inputs(d).spec, "tunnel").command));
        assert.equal(new Set(commands).size, 1);
    });

    it("configures headscale's HA probe from the config, and changes nothing else of headscale's (so a change of routers never restarts it)", async () => {
        assert.deepEqual(headscaleConfig(three).node.routes, { ha: { probe_interval: "6s", probe_timeout: "2s" } });
        assert.deepEqual(headscaleConfig(one).node.routes, { ha: { probe_interval: "10s", probe_timeout: "5s" } });
        const sameProbe = await evaluate(exampleConfig({ set: { routerReplicas: 3 } }));
        for (const name of ["headscale-config", "headscale-statefulset"]) assert.deepEqual(sameProbe.inputs(name), one.inputs(name), name);
    });

    it("approves the routes of every router's node", () => {
        for (const [i, name] of [[0, "router-routes-find-node"], [1, "router-1-routes-find-node"], [2, "router-2-routes-find-node"]] as const) {
            assert.match(three.inputs(name).create, new RegExp(`-- ${i === 0 ? "home-router" : `home-router-${i}`} 300 kubectl`), name);
        }
    });

    it("removes a router's node and state Secret from headscale only after its Deployment is gone, and not on pulumi destroy", () => {
        for (const i of [1, 2]) {
            const removal = three.resources.find((r) => r.name === `router-${i}-node-removal`)!;
            const inputs = three.inputs(`router-${i}-node-removal`);
            assert.equal(inputs.create, undefined, "nothing to do when it is created");
            assert.match(inputs.delete, new RegExp(`^node --input-type=module - home-router-${i} subnet-router-${i}-state headscale-0 120 kubectl `));
            assert.match(inputs.stdin, /nodes", "delete", "--identifier"/);
            const deployment = three.resources.find((r) => r.name === `router-${i}-deployment`)!;
            assert.ok(deployment.dependencies.includes(removal.urn), "the Deployment depends on its removal, so it is deleted first");
            const statefulSet = three.resources.find((r) => r.name === "headscale-statefulset")!;
            assert.equal(removal.deletedWith, statefulSet.urn, "skipped when headscale goes too (pulumi destroy keeps the nodes with the data)");
        }
    });
});
