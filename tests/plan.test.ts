// `npm run plan`: the offline plan of a stack, as a newcomer runs it.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { placeholderKeypair } from "../plan/placeholderKeys";
import { Summary } from "../plan/plan";
import { runTs } from "./helpers/run";
import { repoRoot } from "./helpers/stack";

const planScript = path.join(repoRoot, "plan", "main.ts");
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-plan-"));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/** A project directory that shares the program but has its own stack files and out/. */
function project(stacks: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(scratch, "project-"));
    fs.symlinkSync(path.join(repoRoot, "index.ts"), path.join(dir, "index.ts"));
    fs.copyFileSync(path.join(repoRoot, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    for (const [stack, text] of Object.entries(stacks)) fs.writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), text);
    return dir;
}

const example = fs.readFileSync(path.join(repoRoot, "Pulumi.home.yaml"), "utf8");

function listFiles(dir: string): string[] {
    return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
        .sort();
}

function treeDigest(dir: string): string {
    const hash = createHash("sha256");
    for (const file of listFiles(dir)) hash.update(file).update("\0").update(fs.readFileSync(path.join(dir, file))).update("\0");
    return hash.digest("hex");
}

describe("npm run plan", () => {
    const dir = project({ home: example });
    const first = runTs(planScript, ["--date", "2026-11-29"], dir);
    const out = path.join(dir, "out", "home");

    it("plans the home stack by default and says which secrets to set before pulumi up", () => {
        assert.equal(first.status, 0, first.stderr);
        assert.match(first.stdout, /Plan of stack "home" as of 2026-11-29 written to out\/home\//);
        assert.match(first.stdout, /Set before pulumi up:\n  overlay:vpsSshPrivateKey: not in Pulumi.home.yaml/);
    });

    it("writes summary.json listing every resource with type, name, parent, dependencies, secrets and an input hash", () => {
        const summary: Summary = JSON.parse(fs.readFileSync(path.join(out, "summary.json"), "utf8"));
        assert.equal(summary.project, "overlay");
        assert.equal(summary.stack, "home");
        assert.deepEqual(summary.setBeforeUp.map((p) => p.key), ["overlay:vpsSshPrivateKey"]);
        const names = summary.resources.map((r) => r.name);
        assert.deepEqual(names, [
            "backup-store", "backup-store-key",
            "headscale-backups", "headscale-backups-age-key", "headscale-backups-before-upgrade", "headscale-backups-credentials",
            "headscale-backups-cronjob", "headscale-backups-scripts",
            "headscale", "headscale-config", "headscale-namespace", "headscale-networkpolicy", "headscale-service", "headscale-statefulset",
            "home-cluster", "home-cluster-check", "home-cluster-check-kubectl", "home-cluster-namespace", "router", "router-credentials", "router-deployment",
            "router-key", "router-key-expiry", "router-key-mint", "router-role", "router-rolebinding",
            "router-routes", "router-routes-approve", "router-routes-find-node", "router-serviceaccount", "router-started",
            "tunnel", "tunnel-key",
            "user-keys", "user-keys-alice-laptop", "user-keys-alice-laptop-expiry", "user-keys-alice-laptop-mint",
            "user-keys-ci", "user-keys-ci-expiry", "user-keys-ci-mint", "user-keys-ci-store", "user-keys-user-alice",
            "vps", "vps-backup-store", "vps-coturn", "vps-firewall", "vps-nginx", "vps-tunnel-endpoint",
            "vps-backup-store-state", "vps-coturn-state", "vps-firewall-state", "vps-nginx-state", "vps-tunnel-endpoint-state",
        ].sort());
        for (const r of summary.resources) {
            assert.deepEqual(Object.keys(r).sort(), ["dependsOn", "inputsSha256", "name", "parent", "provider", "secretInputs", "secretOutputs", "type"]);
            assert.match(r.inputsSha256, /^[0-9a-f]{64}$/);
            if (r.parent !== null) assert.ok(names.includes(r.parent), `${r.name}'s parent ${r.parent} is not in the list`);
            for (const d of r.dependsOn) assert.ok(names.includes(d), `${r.name} depends on unknown ${d}`);
        }
        const key = summary.resources.find((r) => r.name === "tunnel-key");
        assert.equal(key?.parent, "tunnel");
        assert.ok(key?.secretOutputs.includes("privateKeyOpenssh"));
        // The router's Secret takes the tunnel key, so Pulumi orders it after the key.
        const credentials = summary.resources.find((r) => r.name === "router-credentials");
        assert.ok(credentials?.dependsOn.includes("tunnel-key"));
        // The router's pod starts only once every VPS step has run.
        const routerPod = summary.resources.find((r) => r.name === "router-deployment");
        for (const step of ["vps-tunnel-endpoint", "vps-backup-store", "vps-nginx", "vps-coturn", "vps-firewall"]) assert.ok(routerPod?.dependsOn.includes(step), step);
        // A change of headscale's image waits for the backup before it, which waits for the VPS's backup account.
        const statefulSet = summary.resources.find((r) => r.name === "headscale-statefulset");
        assert.ok(statefulSet?.dependsOn.includes("headscale-backups-before-upgrade"));
        const beforeUpgrade = summary.resources.find((r) => r.name === "headscale-backups-before-upgrade");
        assert.ok(beforeUpgrade?.dependsOn.includes("vps-backup-store") && beforeUpgrade.dependsOn.includes("headscale-backups-cronjob"), beforeUpgrade?.dependsOn.join(", "));
        assert.deepEqual(credentials?.secretInputs, ["stringData"]);
        assert.equal(credentials?.provider, "home-cluster");
        assert.equal(summary.outputs.loginServer, "https://headscale.example.com");
    });

    it("lists every file it wrote as an artifact with a kind, and nothing else", () => {
        const summary: Summary = JSON.parse(fs.readFileSync(path.join(out, "summary.json"), "utf8"));
        const manifests = summary.artifacts.filter((a) => a.kind === "kubernetes-manifest").map((a) => a.path).sort();
        assert.deepEqual(manifests, [
            "k8s/configmap-headscale-backup-scripts.yaml", "k8s/configmap-headscale.yaml", "k8s/cronjob-headscale-backup.yaml",
            "k8s/deployment-subnet-router.yaml", "k8s/namespace-overlay.yaml", "k8s/networkpolicy-headscale.yaml",
            "k8s/role-subnet-router.yaml", "k8s/rolebinding-subnet-router.yaml", "k8s/secret-headscale-backup.yaml", "k8s/secret-subnet-router-credentials.yaml",
            "k8s/service-headscale.yaml", "k8s/serviceaccount-subnet-router.yaml", "k8s/statefulset-headscale.yaml",
        ]);
        assert.ok(summary.artifacts.some((a) => a.path === "k8s/configmap-headscale/config.yaml" && a.kind === "configmap-file"));
        assert.ok(summary.artifacts.some((a) => a.path === "k8s/configmap-headscale/policy.hujson" && a.kind === "configmap-file"));
        const vps = summary.artifacts.filter((a) => a.kind === "vps-file").map((a) => a.path).sort();
        assert.deepEqual(vps, [
            "vps/etc/nftables.d/overlay-firewall.nft", "vps/etc/nginx/sites-available/overlay-headscale",
            "vps/etc/nginx/sites-available/overlay-headscale.http-only", "vps/etc/security/limits.d/overlay-tunnel.conf",
            "vps/etc/ssh/overlay-backup/authorized_keys", "vps/etc/ssh/overlay-tunnel/authorized_keys", "vps/etc/ssh/sshd_config.d/overlay-backup.conf",
            "vps/etc/ssh/sshd_config.d/overlay-tunnel.conf", "vps/etc/systemd/system/nginx.service.d/overlay-limits.conf", "vps/etc/turnserver.conf", "vps/usr/local/lib/overlay/tunnel-session",
        ]);
        const commands = summary.artifacts.filter((a) => a.kind === "remote-command").map((a) => a.path).sort();
        assert.deepEqual(commands, ["commands/vps-backup-store.txt", "commands/vps-coturn.txt", "commands/vps-firewall.txt", "commands/vps-nginx.txt", "commands/vps-tunnel-endpoint.txt"]);
        assert.match(fs.readFileSync(path.join(out, "commands/vps-nginx.txt"), "utf8"), /## create\nbash -s -- apply\n/);
        // The key's command is shown exactly; what it prints (the key) is not.
        assert.match(fs.readFileSync(path.join(out, "commands/router-key-mint.txt"), "utf8"),
            /## create\nkubectl --namespace=overlay exec headscale-0 -c headscale -- headscale preauthkeys create --tags tag:router --reusable --expiration 90d --output json\n/);
        const outputs = JSON.parse(fs.readFileSync(path.join(out, "outputs.json"), "utf8"));
        assert.equal(outputs.userKeys, "[secret]");
        assert.equal(outputs.routerKeyExpires, "2027-02-27T00:00:00.000Z");
        assert.equal(outputs.routerKeyNextRotation, "2027-01-02");
        for (const a of summary.artifacts) assert.ok(a.kind.length > 0 && a.path.length > 0);
        assert.deepEqual(summary.artifacts.map((a) => a.path).sort(), listFiles(out));
        const config = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
        assert.equal(config.vpsSshPrivateKey, "[secret]");
        assert.deepEqual(config.lanRoutes, ["192.168.1.0/24"]);
    });

    it("writes no secret into out/", () => {
        // The secrets this plan handled: the stand-in SSH key and the tunnel's private key.
        const secrets = [placeholderKeypair("config overlay:vpsSshPrivateKey"), placeholderKeypair("tls.PrivateKey tunnel-key")]
            .map((k) => k.privateKeyPem.split("\n")[1]);
        for (const file of listFiles(out)) {
            const text = fs.readFileSync(path.join(out, file), "utf8");
            assert.doesNotMatch(text, /PRIVATE KEY/, `${file} contains a private key`);
            assert.doesNotMatch(text, /hskey-/, `${file} contains a preauth key`);
            for (const secret of secrets) assert.ok(!text.includes(secret), `${file} contains a secret`);
        }
    });

    it("writes byte-identical plans for the same config", () => {
        const before = treeDigest(out);
        const again = runTs(planScript, ["--stack", "home", "--date", "2026-11-29"], dir);
        assert.equal(again.status, 0, again.stderr);
        assert.equal(treeDigest(out), before);
    });
});

describe("npm run plan on other stacks", () => {
    it("rejects invalid config with every message, exits non-zero and writes nothing", () => {
        const bad = example
            .replace("overlay:hostname: headscale.example.com", "overlay:hostname: not a hostname")
            .replace("    - 192.168.1.0/24\n  overlay:routerHostname", "    - 10.42.0.0/16\n  overlay:routerHostname");
        const dir = project({ bad });
        const run = runTs(planScript, ["--stack", "bad"], dir);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /The stack configuration has 2 problems/);
        assert.match(run.stderr, /1\. overlay:hostname must be a DNS name/);
        assert.match(run.stderr, /2\. overlay:lanRoutes\[0\] \(10\.42\.0\.0\/16\) overlaps the cluster pod CIDR/);
        assert.match(run.stderr, /No plan was written/);
        assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
        assert.equal(fs.existsSync(path.join(dir, "out")), false);
    });

    it("leaves an earlier plan untouched when the config turns bad", () => {
        const dir = project({ home: example });
        assert.equal(runTs(planScript, [], dir).status, 0);
        const before = treeDigest(path.join(dir, "out", "home"));
        fs.writeFileSync(path.join(dir, "Pulumi.home.yaml"), example.replace("overlay:vpsSshPort: 22", "overlay:vpsSshPort: 0"));
        const run = runTs(planScript, [], dir);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /overlay:vpsSshPort must be a whole number from 1 to 65535 \(got 0\)/);
        assert.equal(treeDigest(path.join(dir, "out", "home")), before);
    });

    it("stands in for encrypted secrets it cannot decrypt and says so", () => {
        const encrypted = `${example}  overlay:vpsSshPrivateKey:\n    secure: v1:c2FsdA==:ZW5jcnlwdGVk\n`;
        const dir = project({ enc: encrypted });
        const run = runTs(planScript, ["--stack", "enc"], dir);
        assert.equal(run.status, 0, run.stderr);
        assert.match(run.stdout, /overlay:vpsSshPrivateKey: encrypted in Pulumi.enc.yaml; the offline plan cannot decrypt it/);
    });

    it("refuses a secret written in plain text in the stack file", () => {
        const key = placeholderKeypair("tests: plain secret").privateKeyPem;
        const plain = `${example}  overlay:vpsSshPrivateKey: |\n${key.trimEnd().split("\n").map((l) => `    ${l}`).join("\n")}\n`;
        const dir = project({ plain });
        const run = runTs(planScript, ["--stack", "plain"], dir);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /overlay:vpsSshPrivateKey is stored in plain text/);
        assert.ok(!run.stderr.includes(key.split("\n")[1]), "the key is echoed");
    });

    it("says how to create a stack file that does not exist", () => {
        const dir = project({ home: example });
        const run = runTs(planScript, ["--stack", "prod"], dir);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /There is no Pulumi.prod.yaml; copy Pulumi.home.yaml/);
    });
});
