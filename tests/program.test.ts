// The Pulumi program itself (index.ts) under the mock runtime: bad config stops it before
// any resource is registered; good config builds the stack.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { badConfigs } from "./helpers/badConfigs";
import { evaluate, valueOf } from "./helpers/evaluate";
import { exampleConfig, testSshKey } from "./helpers/stack";

describe("the program under the mock runtime", () => {
    for (const bad of badConfigs) {
        it(`stops on ${bad.title} with a RunError naming ${bad.key}, and registers nothing`, async () => {
            const run = await evaluate(exampleConfig(bad.variant));
            assert.ok(run.error, "the program accepted the configuration");
            assert.ok(pulumi.RunError.isInstance(run.error), `expected a RunError (printed without a stack trace), got ${run.error.name}`);
            assert.match(run.error.message, /nothing was created or changed/);
            assert.ok(run.error.message.includes(bad.key), `the message does not name ${bad.key}:\n${run.error.message}`);
            assert.ok(!run.error.message.includes(testSshKey.split("\n")[1]), "the message quotes the SSH key");
            assert.deepEqual(run.resources.map((r) => r.name), []);
        });
    }

    it("builds the stack from the example config, connecting to the configured cluster", async () => {
        const run = await evaluate(exampleConfig({ set: { kubeconfig: "/etc/overlay/kubeconfig", kubeContext: "home-admin" } }));
        assert.equal(run.error, undefined);
        const cluster = run.inputs("home-cluster");
        assert.equal(cluster.kubeconfig, "/etc/overlay/kubeconfig");
        assert.equal(cluster.context, "home-admin");
        // A rotated key updates the router's Secret in place; the provider's default would
        // delete and recreate it, and the Deployment that uses it (the e2e checks the pod).
        assert.equal(String(cluster.enableSecretMutable), "true");
        assert.equal(String(cluster.enableConfigMapMutable), "true");
        const clusterUrn = run.resources.find((r) => r.name === "home-cluster")?.urn;
        for (const r of run.resources.filter((x) => x.type.startsWith("kubernetes:") && x.name !== "headscale-namespace")) {
            assert.ok(r.provider.startsWith(`${clusterUrn}::`), `${r.name} does not use the configured cluster`);
        }
        // The namespace, which a destroy leaves by default, has a provider of its own that adopts it
        // on the next up; it reaches the same cluster. Nothing else may take over an existing object.
        const namespaceProvider = run.inputs("home-cluster-namespace");
        assert.equal(namespaceProvider.kubeconfig, "/etc/overlay/kubeconfig");
        assert.equal(namespaceProvider.context, "home-admin");
        assert.equal(String(namespaceProvider.upsertExistingObjects), "true");
        assert.equal(cluster.upsertExistingObjects, undefined);
        const namespaceProviderUrn = run.resources.find((r) => r.name === "home-cluster-namespace")?.urn;
        assert.ok(run.resources.find((r) => r.name === "headscale-namespace")?.provider.startsWith(`${namespaceProviderUrn}::`));

        const key = run.resources.find((r) => r.name === "tunnel-key");
        assert.equal(key?.type, "tls:index/privateKey:PrivateKey");
        assert.equal(key?.parent, run.resources.find((r) => r.name === "tunnel")?.urn, "the key is a child of the TunnelKeypair component");
        assert.equal(run.inputs("tunnel-key").algorithm, "ED25519");
        assert.ok(key?.additionalSecretOutputs.includes("privateKeyOpenssh"));

        assert.equal(run.exports.loginServer, "https://headscale.example.com");
        assert.equal(run.exports.routerNodeName, "home-router");
        assert.match(String(run.exports.vpsHostKeyFingerprint), /^SHA256:[A-Za-z0-9+/]{43}$/);
        const tunnelKey = run.exports.tunnelPublicKey as pulumi.Output<string>;
        assert.equal(await pulumi.isSecret(tunnelKey), false, "the public key is not a secret");
        assert.match(await valueOf<string>(tunnelKey), /^ssh-ed25519 AAAA\S+$/);
        assert.equal(await valueOf(run.exports.namespace), "overlay");
        assert.equal(await valueOf(run.exports.headscaleService), "headscale.overlay.svc");
        assert.equal(await valueOf(run.exports.routerDeployment), "subnet-router");
    });
});
