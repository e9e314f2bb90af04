// The key lifecycle under the mock runtime: what depends on what, that secrets stay secret,
// that a steady run changes nothing, and what a rotation changes.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { addDays, rotationWindow, todayVariable } from "../config/clock";
import { hashValue, showValue } from "../plan/values";
import { Evaluation, evaluate, valueOf } from "./helpers/evaluate";
import { exampleConfig, testSshKey, Variant } from "./helpers/stack";

const day0 = "2026-11-29";
after(() => delete process.env[todayVariable]);

async function evaluateOn(date: string, variant: Variant = {}): Promise<Evaluation> {
    process.env[todayVariable] = date;
    const run = await evaluate(exampleConfig(variant));
    assert.equal(run.error, undefined, run.error?.message);
    return run;
}

const hashes = (run: Evaluation) => new Map(run.resources.map((r) => [r.name, hashValue(r.inputs)]));
function changed(a: Evaluation, b: Evaluation): string[] {
    const before = hashes(a);
    const after = hashes(b);
    const names = new Set([...before.keys(), ...after.keys()]);
    return [...names].filter((n) => before.get(n) !== after.get(n)).sort();
}

describe("the key lifecycle", () => {
    it("mints the router key after headscale is ready, fills the Secret after the key, approves routes after the router is ready", async () => {
        const run = await evaluateOn(day0);
        const urn = (name: string) => run.resources.find((r) => r.name === name)!.urn;
        const deps = (name: string) => run.resources.find((r) => r.name === name)!.dependencies;
        assert.ok(deps("router-key-mint").includes(urn("headscale-statefulset")));
        assert.ok(deps("router-credentials").includes(urn("router-key-mint")));
        assert.ok(deps("router-started").includes(urn("router-deployment")));
        assert.ok(deps("router-routes-find-node").includes(urn("router-started")));
        assert.ok(deps("router-routes-approve").includes(urn("router-routes-find-node")));
        for (const key of ["user-keys-ci-mint", "user-keys-alice-laptop-mint", "user-keys-user-alice"]) {
            assert.ok(deps(key).includes(urn("headscale-statefulset")), key);
        }
        assert.ok(deps("user-keys-alice-laptop-mint").includes(urn("user-keys-user-alice")), "the user exists before its key");
        // The key kept in a GitHub secret is stored after the router's key, Secret and routes,
        // and the key it replaces is expired only after the store.
        for (const before of ["user-keys-ci-mint", "router-credentials", "router-started", "router-routes-approve"]) assert.ok(deps("user-keys-ci-store").includes(urn(before)), before);
        assert.ok(deps("user-keys-ci-expiry").includes(urn("user-keys-ci-store")));
        assert.ok(!deps("user-keys-alice-laptop-expiry").some((d) => d.endsWith("-store")), "a key with no githubSecret is not stored");
    });

    it("stores the tag:ci key with gh secret set, the key on stdin (secret), the token from the environment", async () => {
        const run = await evaluateOn(day0);
        const store = run.inputs("user-keys-ci-store");
        assert.match(store.create, /^bash --norc --noprofile -c '#!\/usr\/bin\/env bash\n[\s\S]*gh secret set "\$secret" --repo "\$repo" --app actions[\s\S]*' store-github-secret alice\/overlay TAILNET_CI_AUTHKEY$/);
        assert.doesNotMatch(store.create, /hskey|TAILNET_KEY_WRITER_TOKEN=/);
        assert.equal(store.stdin, "[secret]", "the key on stdin is a secret input");
        const stored = await valueOf<Record<string, { repository: string; secret: string; keyId: string; expires: string }>>(run.exports.githubSecretKeys);
        assert.deepEqual(Object.keys(stored), ["ci"]);
        assert.equal(stored.ci.repository, "alice/overlay");
        assert.equal(stored.ci.secret, "TAILNET_CI_AUTHKEY");
        assert.match(stored.ci.keyId, /^\d+$/);
        assert.equal(await pulumi.isSecret(pulumi.output(run.exports.githubSecretKeys)), false, "nothing secret: where, which key id, until when");
    });

    it("runs the exact headscale commands the design names", async () => {
        const run = await evaluateOn(day0);
        assert.equal(run.inputs("router-key-mint").create,
            "kubectl --namespace=overlay exec headscale-0 -c headscale -- headscale preauthkeys create --tags tag:router --reusable --expiration 90d --output json");
        assert.match(run.inputs("router-key-expiry").delete, /-- headscale preauthkeys expire --id \d+$/);
        assert.match(run.inputs("router-routes-approve").create, /-- headscale nodes approve-routes --identifier \d+ --routes 192\.168\.1\.0\/24$/);
        assert.match(run.inputs("user-keys-alice-laptop-mint").create, /preauthkeys create --user \d+ --expiration 7d --output json$/);
        assert.match(run.inputs("user-keys-ci-mint").create, /preauthkeys create --tags tag:ci --reusable --ephemeral --expiration 90d --output json$/);
        const withContext = await evaluateOn(day0, { set: { kubeconfig: "/home/me/.kube/home config", kubeContext: "home" } });
        assert.match(withContext.inputs("router-key-mint").create, /^kubectl '--kubeconfig=\/home\/me\/.kube\/home config' --context=home --namespace=overlay exec/);
    });

    it("keeps every key secret: in commands' output, in the Secret and in the stack outputs", async () => {
        const run = await evaluateOn(day0);
        const mint = run.resources.find((r) => r.name === "router-key-mint")!;
        for (const output of ["stdout", "stderr"]) assert.ok(mint.additionalSecretOutputs.includes(output));
        assert.equal(run.inputs("router-key-mint").logging, "none");
        assert.equal(run.inputs("router-key-mint").addPreviousOutputInEnv, false, "the key is not passed on in the environment");
        for (const r of run.resources) {
            const shown = JSON.stringify(showValue(r.inputs).value);
            assert.doesNotMatch(shown, /hskey-auth-/, `${r.name} shows a key`);
            assert.ok(!shown.includes(testSshKey.split("\n")[1]), `${r.name} shows the SSH key`);
        }
        assert.equal(await pulumi.isSecret(run.exports.userKeys as pulumi.Output<unknown>), true);
        const keys = await valueOf<Record<string, { tailscaleUp: string }>>(run.exports.userKeys);
        assert.match(keys.ci.tailscaleUp, /^tailscale up --login-server=https:\/\/headscale\.example\.com --authkey=hskey-auth-\S+ --accept-routes$/);
        assert.equal(await pulumi.isSecret(run.exports.routerKeyExpires as pulumi.Output<string>), false);
        // Every stack output that is not secret is free of keys.
        for (const [name, value] of Object.entries(run.exports)) {
            const output = pulumi.output(value as pulumi.Input<unknown>);
            if (await pulumi.isSecret(output)) continue;
            assert.doesNotMatch(JSON.stringify(await valueOf(output)) ?? "", /hskey-|PRIVATE KEY/, `output ${name} shows a key`);
        }
    });

    it("reports the key's expiry and the next rotation", async () => {
        const run = await evaluateOn(day0);
        assert.equal(await valueOf(run.exports.routerKeyExpires), `${addDays(day0, 90)}T00:00:00.000Z`);
        assert.equal(run.exports.routerKeyNextRotation, rotationWindow(day0, 60).next);
    });

    it("registers identical inputs when run twice on the same day: nothing re-runs, nothing rolls", async () => {
        const first = await evaluateOn(day0);
        const second = await evaluateOn(day0);
        assert.deepEqual(changed(first, second), []);
    });

    it("rotates only the router key and what consumes it, and only when a new window starts", async () => {
        const P = 60;
        const noUserKeys: Variant = { set: { userKeys: [] } };
        const start = rotationWindow(day0, P).start;
        const days = [0, P - 1, P, P + 1, 2 * P].map((d) => addDays(start, d));
        const runs: Evaluation[] = [];
        for (const d of days) runs.push(await evaluateOn(d, noUserKeys));
        const rotated = ["router-credentials", "router-key-expiry", "router-key-mint"];
        const steps = days.slice(1).map((d, i) => ({ from: days[i], to: d, changed: changed(runs[i], runs[i + 1]) }));
        for (const s of steps) console.log(`# ${s.from} -> ${s.to}: ${s.changed.join(", ") || "no change"}`);
        assert.deepEqual(steps.map((s) => s.changed), [[], rotated, [], rotated]);
        // The router's Deployment reads the key from its Secret: a new key rolls no pod.
        assert.ok(!steps.some((s) => s.changed.includes("router-deployment")));
    });

    it("with three routers, a rotation still changes only the key and the one Secret they share: no router restarts", async () => {
        const three: Variant = { set: { userKeys: [], routerReplicas: 3 } };
        const start = rotationWindow(day0, 60).start;
        const before = await evaluateOn(addDays(start, 59), three);
        const after = await evaluateOn(addDays(start, 60), three);
        assert.deepEqual(changed(before, after), ["router-credentials", "router-key-expiry", "router-key-mint"]);
    });
});
