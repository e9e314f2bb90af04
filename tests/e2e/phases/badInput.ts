// Before anything is built: the probe sees the VM's test listeners (so that a closed port later
// means closed), a config that fails validation changes nothing, and the example stack, set up
// as the README says, previews as all creates.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { it } from "node:test";
import YAML from "yaml";
import { waitUntil } from "../../helpers/netns";
import { repoRoot } from "../../helpers/stack";
import { E2e } from "../context";
import { probe } from "../lib/device";
import { configure, isSelfReference, stackConfig } from "../lib/stack";
import { mustPulumi } from "../pulumiCli";

export function badInputPhase(e2e: E2e): void {
    it("before the firewall, the probe sees the test listener (so a closed port below means closed)", async () => {
        const seen = await waitUntil(async () => {
            const r = await probe(e2e, ["tcp/22", "tcp/5555", "udp/5555"]);
            return r["tcp/22"] && r["tcp/5555"] && r["udp/5555"];
        }, 30_000, 1_000);
        assert.ok(seen, "the probe does not see the VM's test listeners");
    });

    it("bad input: a config that fails validation stops pulumi preview before anything is created, naming the key", async () => {
        const { project, image, tls } = e2e;
        await mustPulumi(project, ["stack", "init", "bad"]);
        await configure(e2e, "bad", { ...stackConfig(e2e), vpsSshPort: 70000 }, { vpsSshPrivateKey: image.privateKey, tlsPrivateKey: tls.privateKey });
        const r = await project.run(["preview", "--stack", "bad"]);
        assert.notEqual(r.status, 0);
        assert.match(r.stdout + r.stderr, /overlay:vpsSshPort must be a whole number from 1 to 65535 \(got 70000\)/);
        assert.match(r.stdout + r.stderr, /nothing was created or changed/);
        // A secret in plain text: the engine refuses it, as Pulumi.yaml declares the key secret.
        await configure(e2e, "bad", { ...stackConfig(e2e), vpsSshPrivateKey: image.privateKey }, { tlsPrivateKey: tls.privateKey });
        const plain = await project.run(["preview", "--stack", "bad"]);
        assert.notEqual(plain.status, 0);
        assert.match(plain.stdout + plain.stderr, /vpsSshPrivateKey' must be encrypted as it's secret/);
        const exported = JSON.parse((await mustPulumi(project, ["stack", "export", "--stack", "bad"])).stdout);
        assert.deepEqual(exported.deployment.resources ?? [], [], "nothing was created");
        await mustPulumi(project, ["stack", "rm", "bad", "--yes"]);
    });

    it("the example stack, set up as the README says, previews: every resource a create (acme mode leaves the secret tlsPrivateKey at its default)", async () => {
        const { project, image } = e2e;
        await mustPulumi(project, ["stack", "init", "example"]);
        const file = project.stackFile("example");
        const doc = YAML.parse(fs.readFileSync(file, "utf8"));
        doc.config = YAML.parse(fs.readFileSync(path.join(repoRoot, "Pulumi.home.yaml"), "utf8")).config;
        fs.writeFileSync(file, YAML.stringify(doc));
        await mustPulumi(project, ["config", "set", "--stack", "example", "--secret", "vpsSshPrivateKey"], { input: image.privateKey });
        // No cluster is configured: the provider finds none, and a preview needs none.
        const r = await mustPulumi(project, ["preview", "--stack", "example", "--json"], { env: { KUBECONFIG: path.join(e2e.run, "no-kubeconfig") } });
        const ops = [...new Set((JSON.parse(r.stdout).steps as { op: string; urn: string }[]).filter((x) => !isSelfReference(x.urn)).map((x) => x.op))];
        assert.deepEqual(ops, ["create"]);
        await mustPulumi(project, ["stack", "rm", "example", "--yes"]);
    });
}
