// What the plan writes for the kinds of resource later components register: Kubernetes
// objects, files in ConfigMaps, files copied to the VPS and commands, secrets redacted.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { Artifact, resourceArtifacts } from "../plan/artifacts";
import { RecordedResource, startRecording } from "../plan/recorder";
import { hashValue, showValue } from "../plan/values";

const sshKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ib2R5\n-----END OPENSSH PRIVATE KEY-----\n";
let artifacts: Artifact[];
let recorded: RecordedResource[];

describe("plan artifacts", () => {
    before(async () => {
        recorded = await startRecording("overlay", "test");
        const connection = { host: "203.0.113.10", port: 22, user: "root", privateKey: pulumi.secret(sshKey) };
        new k8s.core.v1.ConfigMap("headscale-config", {
            metadata: { name: "headscale", namespace: "overlay" },
            data: { "config.yaml": "server_url: https://headscale.example.com\n", "policy.hujson": "{}\n" },
        });
        new k8s.core.v1.Secret("router-secret", {
            metadata: { name: "router", namespace: "overlay" },
            stringData: { TS_AUTHKEY: pulumi.secret("hskey-auth-0123456789"), plainButSecretKind: "not marked" },
        });
        new command.remote.Command("vps-nginx", {
            connection,
            create: "bash -s -- 'headscale.example.com' 8080",
            delete: "bash -s -- --remove",
            stdin: "#!/usr/bin/env bash\nset -euo pipefail\necho configure\n",
        });
        new command.remote.CopyToRemote("vps-site", {
            connection,
            source: new pulumi.asset.StringAsset("server { listen 443 ssl; }\n"),
            remotePath: "/etc/nginx/sites-available/headscale",
        });
        new command.local.Command("mint-key", { create: "kubectl exec headscale-0 -- headscale preauthkeys create -o json" });
        await pulumi.runtime.disconnect();
        artifacts = recorded.flatMap(resourceArtifacts);
    });

    const find = (p: string) => {
        const a = artifacts.find((x) => x.path === p);
        assert.ok(a, `no artifact ${p}; have ${artifacts.map((x) => x.path).join(", ")}`);
        return a;
    };

    it("writes each Kubernetes object as a manifest", () => {
        const cm = find("k8s/configmap-headscale.yaml");
        assert.equal(cm.kind, "kubernetes-manifest");
        const manifest = YAML.parse(cm.content);
        assert.equal(manifest.apiVersion, "v1");
        assert.equal(manifest.kind, "ConfigMap");
        assert.equal(manifest.metadata.namespace, "overlay");
    });

    it("writes each file of a ConfigMap on its own", () => {
        assert.equal(find("k8s/configmap-headscale/config.yaml").content, "server_url: https://headscale.example.com\n");
        assert.equal(find("k8s/configmap-headscale/policy.hujson").kind, "configmap-file");
    });

    it("shows every value of a Kubernetes Secret as [secret], marked or not", () => {
        const secret = YAML.parse(find("k8s/secret-router.yaml").content);
        assert.deepEqual(secret.stringData, { TS_AUTHKEY: "[secret]", plainButSecretKind: "[secret]" });
    });

    it("writes each command with its command lines, its script and where it runs, without the SSH key", () => {
        const nginx = find("commands/vps-nginx.txt");
        assert.equal(nginx.kind, "remote-command");
        assert.match(nginx.content, /run on root@203\.0\.113\.10:22 over SSH/);
        assert.match(nginx.content, /## create\nbash -s -- 'headscale\.example\.com' 8080\n/);
        assert.match(nginx.content, /## delete\nbash -s -- --remove\n/);
        assert.match(nginx.content, /## stdin\n#!\/usr\/bin\/env bash\nset -euo pipefail\n/);
        assert.equal(find("commands/mint-key.txt").kind, "local-command");
    });

    it("writes files copied to the VPS under vps/ at their remote path", () => {
        const site = find("vps/etc/nginx/sites-available/headscale");
        assert.equal(site.kind, "vps-file");
        assert.equal(site.content, "server { listen 443 ssl; }\n");
    });

    it("never writes a secret", () => {
        for (const a of artifacts) {
            assert.ok(!a.content.includes("c2VjcmV0LWtleS1ib2R5"), `${a.path} contains the SSH key`);
            assert.ok(!a.content.includes("hskey-auth-0123456789"), `${a.path} contains the auth key`);
        }
    });

    it("names secret inputs by path and hashes them without showing them", () => {
        const nginx = recorded.find((r) => r.name === "vps-nginx");
        // The command SDK marks the whole connection secret, SSH key and all.
        assert.deepEqual(showValue(nginx?.inputs).secretPaths, ["connection"]);
        const hash = hashValue(nginx?.inputs);
        assert.match(hash, /^[0-9a-f]{64}$/);
        // The hash follows the secret: a different key gives a different hash.
        const changed = JSON.parse(JSON.stringify(nginx?.inputs).replace("c2VjcmV0LWtleS1ib2R5", "b3RoZXI="));
        assert.notEqual(hashValue(changed), hash);
        assert.equal(hashValue(JSON.parse(JSON.stringify(nginx?.inputs))), hash, "stable across copies");
    });
});
