// The end of the stack's life: its state holds no secret in plain text; `pulumi destroy` keeps
// the tailnet's data and a later up resumes it; with keepDataOnDestroy false, destroy leaves
// nothing of ours on the VPS or in the cluster, and expires the keys.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { it } from "node:test";
import { tunnelUser } from "../../../components/router/tunnel";
import { shellQuote } from "../../../components/shell";
import { backupChroot, backupStoreUser } from "../../../components/vps/backupStore";
import { stepFiles } from "../../../components/vps/steps";
import { E2e, namespace, stack } from "../context";
import { exec } from "../exec";
import { dataDir, headscaleCli, kubectl, preauthKeyExpirations, tryKubectl } from "../lib/cluster";
import { startDevice, untilDeviceReachesLan } from "../lib/device";
import { readOutputs, setConfig } from "../lib/stack";
import { remoteCommands, stepPaths } from "../lib/vps";
import { mustPulumi } from "../pulumiCli";

function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}

export function teardownPhase(e2e: E2e): void {
    it("pulumi stack export holds no private key, preauth key or TLS key in plain text", async () => {
        e2e.needUp();
        const exported = (await mustPulumi(e2e.project, ["stack", "export", "--stack", stack])).stdout;
        const secrets = JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "secret", "subnet-router-credentials", "--output=json")).stdout).data;
        const plain = (b64: string) => Buffer.from(b64, "base64").toString("utf8").trim();
        const forbidden: Record<string, string> = {
            "the VPS login key": e2e.image.privateKey.trim(),
            "the TLS key": e2e.tls.privateKey.trim(),
            "the tunnel key": plain(secrets["tunnel-key"]),
            "the router preauth key": plain(secrets.TS_AUTHKEY),
            "the phone's preauth key": e2e.outputs.userKeys.phone.key,
            "the backups' age identity": e2e.outputs.backupIdentity,
        };
        for (const [what, value] of Object.entries(forbidden)) {
            assert.ok(value.length > 20, `${what} is known to the test`);
            // Whole, and its longest line (a PEM body line would do).
            const longest = value.split("\n").sort((a, b) => b.length - a.length)[0];
            assert.ok(!exported.includes(longest), `${what} is in the state in plain text`);
        }
        assert.doesNotMatch(exported, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    });

    it("pulumi destroy keeps the data; a later pulumi up resumes with the same nodes, and the device keeps its node ID", async () => {
        e2e.needUp();
        const phoneId = async () => (JSON.parse((await headscaleCli(e2e, "nodes", "list", "--output", "json")).stdout) as any[]).find((n) => n.name === "phone")?.id;
        const idBefore = await phoneId();
        assert.ok(idBefore, "the device is a node");
        // As the README says: the identity kept outside the stack, to read these backups later.
        const identity = String(e2e.outputs.backupIdentity);
        const recipient = String(e2e.outputs.backupRecipient);
        await exec(e2e.world.device, "pkill", ["-x", "tailscaled"]);
        let started = Date.now();
        const r = await mustPulumi(e2e.project, ["destroy", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        e2e.figures.report("pulumi destroy (keepDataOnDestroy: true)", (Date.now() - started) / 1000);
        assert.match(r.stdout, /Resources:\n\s+- \d+ deleted/, r.stdout.slice(-3000));
        assert.equal((await kubectl(e2e, "get", "namespace", namespace, "--output=name")).stdout.trim(), `namespace/${namespace}`);
        assert.equal((await kubectl(e2e, `--namespace=${namespace}`, "get", "pvc", "data-headscale-0", "--output=jsonpath={.status.phase}")).stdout, "Bound");
        assert.equal((await tryKubectl(e2e, [`--namespace=${namespace}`, "get", "secret", "subnet-router-state", "--output=name"])).stdout.trim(), "secret/subnet-router-state", "the router's state stays");
        const gone = await kubectl(e2e, `--namespace=${namespace}`, "get", "statefulsets,deployments,cronjobs,configmaps,services", "--selector=app.kubernetes.io/part-of=overlay", "--output=name");
        assert.equal(gone.stdout.trim(), "", gone.stdout);
        const backups = await e2e.vm.ssh(`ls ${backupChroot}/backups; ! id ${backupStoreUser} >/dev/null 2>&1 || echo "still there: the user"`);
        assert.match(backups.stdout, /headscale-\d{8}T\d{6}Z\.tar\.age/, "the backups stay on the VPS");
        assert.doesNotMatch(backups.stdout, /still there/);

        await mustPulumi(e2e.project, ["config", "set", "--stack", stack, "--secret", "backupIdentity"], { input: identity });
        started = Date.now();
        await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes"], { timeoutMs: 900_000 });
        e2e.figures.report("pulumi up after the destroy", (Date.now() - started) / 1000);
        e2e.outputs = await readOutputs(e2e);
        assert.equal(e2e.outputs.backupRecipient, recipient, "the backups are encrypted to the saved identity again");
        e2e.device = await startDevice(e2e, e2e.device!.stateDir);
        const ms = await untilDeviceReachesLan(e2e, 180_000);
        e2e.figures.report("the device, restarted with its state, reached the LAN after", ms / 1000);
        assert.equal(await phoneId(), idBefore, "the device's node ID is the same");
    });

    it("with keepDataOnDestroy false, pulumi destroy leaves nothing of ours on the VPS or in the cluster, and expires the keys", async () => {
        e2e.needUp();
        const keyIds = [String(e2e.outputs.routerKeyId)];
        await exec(e2e.world.device, "pkill", ["-x", "tailscaled"]);
        await setConfig(e2e, "keepDataOnDestroy", "false");
        await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        // headscale's volume outlives the namespace here (the test's storage class retains
        // volumes): its database tells afterwards whether the keys were expired.
        const data = await dataDir(e2e);
        // What the steps installed: after destroy, no file may still have that content.
        const installed = (await remoteCommands(e2e)).flatMap((step) => Object.entries(stepFiles(step.inputs.stdin ?? "")));
        assert.ok(installed.length >= stepPaths.length, installed.map(([file]) => file).join(" "));
        const started = Date.now();
        const r = await mustPulumi(e2e.project, ["destroy", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        e2e.figures.report("pulumi destroy (keepDataOnDestroy: false)", (Date.now() - started) / 1000);
        assert.match(r.stdout, /Resources:\n\s+- \d+ deleted/, r.stdout.slice(-3000));
        const check = await e2e.vm.ssh([
            ...installed.map(([file, content]) => `if [ -f ${shellQuote(file)} ] && [ "$(sha256sum < ${shellQuote(file)} | cut -d' ' -f1)" = ${sha256(content)} ]; then echo "still there: "${shellQuote(file)}; fi`),
            `[ ! -e /etc/nginx/sites-enabled/overlay-headscale ] || echo "still there: the nginx site link"`,
            `grep -Eq '^[[:space:]]*worker_connections 768;' /etc/nginx/nginx.conf || echo "not the distribution's: worker_connections in nginx.conf"`,
            `! id ${tunnelUser} >/dev/null 2>&1 || echo "still there: the user ${tunnelUser}"`,
            `! id ${backupStoreUser} >/dev/null 2>&1 || echo "still there: the user ${backupStoreUser}"`,
            `[ ! -e ${backupChroot} ] || echo "still there: ${backupChroot}"`,
            `! nft list table inet overlay_firewall >/dev/null 2>&1 || echo "still there: the firewall table"`,
            `! systemctl is-active --quiet coturn || echo "still running: coturn"`,
        ].join("\n"));
        assert.equal(check.stdout.trim(), "", check.stdout);
        const left = await tryKubectl(e2e, ["get", "namespace", namespace, "--ignore-not-found", "--output=name"]);
        assert.equal(left.stdout.trim(), "", "the namespace is gone");
        const labelled = await kubectl(e2e, "get", "all,secrets,configmaps,roles,rolebindings,networkpolicies,pvc,namespaces,clusterroles,clusterrolebindings,cronjobs,jobs", "--all-namespaces", "--selector=app.kubernetes.io/part-of=overlay", "--output=name");
        assert.equal(labelled.stdout.trim(), "", labelled.stdout);
        // The keys, in headscale's own database.
        const expirations = preauthKeyExpirations(data);
        for (const id of keyIds) {
            const key = expirations.find((k) => String(k.id) === id);
            assert.ok(key && Date.parse(key.expiration) <= Date.now(), `key ${id} is expired: ${JSON.stringify(key)}`);
        }
    });
}
