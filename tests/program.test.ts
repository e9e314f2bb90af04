// The Pulumi program itself (index.ts) under the mock runtime: bad config stops it before
// any resource is registered; good config builds the stack.
import assert from "node:assert/strict";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { RawConfig } from "../config";
import { RecordedResource, startRecording } from "../plan/recorder";
import { showValue } from "../plan/values";
import { badConfigs } from "./helpers/badConfigs";
import { exampleConfig, project, repoRoot, testSshKey } from "./helpers/stack";

const entry = path.join(repoRoot, "index.ts");
let recorded: RecordedResource[];

/** Evaluates index.ts afresh with the given config; returns its exports or throws its error. */
async function evaluate(config: RawConfig): Promise<Record<string, unknown>> {
    recorded.length = 0;
    pulumi.runtime.setAllConfig(config.values, [...config.secretKeys]);
    delete require.cache[require.resolve(entry)];
    const program = require(entry);
    // Let every registration reach the (mock) engine before looking.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return program;
}

describe("the program under the mock runtime", () => {
    before(async () => {
        recorded = await startRecording(project, "test");
    });

    for (const bad of badConfigs) {
        it(`stops on ${bad.title} with a RunError naming ${bad.key}, and registers nothing`, async () => {
            await assert.rejects(evaluate(exampleConfig(bad.variant)), (err: Error) => {
                assert.ok(pulumi.RunError.isInstance(err), `expected a RunError (printed without a stack trace), got ${err.name}`);
                assert.match(err.message, /nothing was created or changed/);
                assert.ok(err.message.includes(bad.key), `the message does not name ${bad.key}:\n${err.message}`);
                assert.ok(!err.message.includes(testSshKey.split("\n")[1]), "the message quotes the SSH key");
                return true;
            });
            assert.deepEqual(recorded.map((r) => r.name), []);
        });
    }

    it("builds the stack from the example config, connecting to the configured cluster", async () => {
        const program = await evaluate(exampleConfig({ set: { kubeconfig: "/etc/overlay/kubeconfig", kubeContext: "home-admin" } }));
        const byName = new Map(recorded.map((r) => [r.name, r]));
        const cluster = byName.get("home-cluster");
        assert.equal(cluster?.type, "pulumi:providers:kubernetes");
        const inputs = showValue(cluster?.inputs).value as Record<string, unknown>;
        assert.equal(inputs.kubeconfig, "/etc/overlay/kubeconfig");
        assert.equal(inputs.context, "home-admin");

        const key = byName.get("tunnel-key");
        assert.equal(key?.type, "tls:index/privateKey:PrivateKey");
        assert.equal(key?.parent, byName.get("tunnel")?.urn, "the key is a child of the TunnelKeypair component");
        assert.equal((showValue(key?.inputs).value as Record<string, unknown>).algorithm, "ED25519");
        assert.ok(key?.additionalSecretOutputs.includes("privateKeyOpenssh"));

        assert.equal(program.loginServer, "https://headscale.example.com");
        assert.equal(program.routerNodeName, "home-router");
        assert.match(String(program.vpsHostKeyFingerprint), /^SHA256:[A-Za-z0-9+/]{43}$/);
        const tunnelKey = program.tunnelPublicKey as pulumi.Output<string>;
        assert.equal(await pulumi.isSecret(tunnelKey), false, "the public key is not a secret");
        assert.match(await new Promise<string>((resolve) => tunnelKey.apply(resolve)), /^ssh-ed25519 AAAA\S+$/);
    });
});
