// Backups: one taken while the device is connected, encrypted on the VPS; a store that cannot
// be reached and a full one, each a visible failure that harms nothing; a backup that does not
// decrypt, refused; a wiped volume restored the documented way; and the upgrade guard's
// refusals, with the backup planned before an upgrade.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { it } from "node:test";
import { shellQuote } from "../../../components/shell";
import { backupChroot, backupStoreUser } from "../../../components/vps/backupStore";
import { backupNamePattern } from "../../../config/keys";
import { waitUntil } from "../../helpers/netns";
import { E2e, lanUrl, namespace, stack } from "../context";
import { exec, mustExec } from "../exec";
import { dataDir, finishedJob, headscaleAddress, headscaleCli, jobMessage, kubectl, pod, restarts, tryKubectl } from "../lib/cluster";
import { deviceReaches, untilDeviceReachesLan } from "../lib/device";
import { setConfig } from "../lib/stack";
import { mustPulumi } from "../pulumiCli";

/** The newest backup on the VM. */
async function newestBackup(e2e: E2e): Promise<string> {
    const r = await e2e.vm.ssh(`ls -1 ${backupChroot}/backups`);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter((name) => backupNamePattern.test(name)).sort().at(-1) ?? "";
}

export function backupsPhase(e2e: E2e): void {
    it("backup: the job runs while the device is connected; the encrypted file lands on the VM under the backup account, and the VM holds no plaintext", async () => {
        e2e.needUp();
        const started = Date.now();
        let reachedDuring = 0;
        await kubectl(e2e, `--namespace=${namespace}`, "create", "job", "--from=cronjob/headscale-backup", "e2e-backup");
        const { succeeded, pods } = await finishedJob(e2e, "e2e-backup", 300_000, async () => {
            if ((await deviceReaches(e2e, lanUrl, 3)) === "lan-service") reachedDuring++;
        });
        assert.ok(succeeded && pods === 1, `the backup job failed: ${await jobMessage(e2e, "e2e-backup")}`);
        e2e.figures.report("backup job (kubectl create job --from=cronjob/headscale-backup): done after", (Date.now() - started) / 1000, `the device reached the LAN ${reachedDuring} times meanwhile`);
        assert.ok(reachedDuring > 0, "the device reached the LAN while the backup ran");
        assert.equal(await deviceReaches(e2e, lanUrl, 5), "lan-service");

        const listing = await e2e.vm.ssh(`stat -c '%U %a %n' ${backupChroot} ${backupChroot}/backups ${backupChroot}/backups/*`);
        assert.equal(listing.status, 0, listing.stderr);
        const lines = listing.stdout.trim().split("\n");
        assert.equal(lines[0], `root 755 ${backupChroot}`);
        assert.equal(lines[1], `${backupStoreUser} 700 ${backupChroot}/backups`);
        assert.equal(lines.length, 3, listing.stdout);
        assert.match(lines[2], new RegExp(`^${backupStoreUser} \\d+ ${backupChroot}/backups/headscale-\\d{8}T\\d{6}Z\\.tar\\.age$`));
        e2e.backupName = path.basename(lines[2].split(" ")[2]);
        const head = await e2e.vm.ssh(`head -c 21 ${backupChroot}/backups/${e2e.backupName}`);
        assert.equal(head.stdout, "age-encryption.org/v1", "the file is age-encrypted");

        // The VM holds neither the noise private key nor a database, anywhere we could have written.
        const noiseKey = fs.readFileSync(path.join(await dataDir(e2e), "noise_private.key"), "utf8").trim();
        assert.match(noiseKey, /^privkey:[0-9a-f]{64}$/);
        const grep = await e2e.vm.ssh(`grep -rlsF -e ${shellQuote(noiseKey.slice(8))} -e 'SQLite format 3' /srv /home /root /tmp /var/tmp /etc /opt 2>/dev/null; true`, { timeoutMs: 120_000 });
        assert.equal(grep.stdout.trim(), "", `plaintext on the VM: ${grep.stdout}`);
    });

    it("bad input: the backup destination unreachable: the job fails visibly, naming the host, is tried again, and headscale is not affected", async () => {
        e2e.needUp();
        assert.ok(e2e.backupName, "the backup test ran");
        const before = await pod(e2e, "headscale-0");
        const cron = JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "cronjob", "headscale-backup", "--output=json")).stdout);
        const lastGood = async () => (await kubectl(e2e, `--namespace=${namespace}`, "get", "cronjob", "headscale-backup", "--output=jsonpath={.status.lastSuccessfulTime}")).stdout;
        assert.ok(await waitUntil(async () => (await lastGood()) !== "", 30_000, 1_000), "the CronJob records the earlier good backup");
        const lastGoodBefore = await lastGood();
        // The CronJob's own job, as its schedule would start it, with the store's address
        // replaced by one where nothing listens (refused at once, rather than a long timeout).
        const spec = structuredClone(cron.spec.jobTemplate.spec);
        const unreachable: Record<string, string> = { STORE_HOST: "127.0.0.1", STORE_PORT: "9" };
        for (const e of spec.template.spec.containers[0].env) e.value = unreachable[e.name] ?? e.value;
        const job = {
            apiVersion: "batch/v1", kind: "Job",
            metadata: {
                name: "e2e-backup-unreachable", namespace, labels: cron.spec.jobTemplate.metadata?.labels,
                ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name: cron.metadata.name, uid: cron.metadata.uid, controller: true }],
            },
            spec,
        };
        const started = Date.now();
        const created = await tryKubectl(e2e, ["create", "-f", "-"], JSON.stringify(job));
        assert.equal(created.status, 0, created.stderr);
        let reachedDuring = 0;
        const { succeeded, pods } = await finishedJob(e2e, job.metadata.name, 300_000, async () => {
            if ((await deviceReaches(e2e, lanUrl, 3)) === "lan-service") reachedDuring++;
        });
        const message = await jobMessage(e2e, job.metadata.name);
        e2e.figures.report("backup to an unreachable store: failed for good after", (Date.now() - started) / 1000, `${pods} tries; the device reached the LAN ${reachedDuring} times meanwhile`);
        assert.ok(!succeeded);
        assert.equal(pods, cron.spec.jobTemplate.spec.backoffLimit + 1, "the job was tried again, as its backoffLimit says");
        assert.match(message, /overlay-backup: error: could not store headscale-\d{8}T\d{6}Z\.tar\.age on 127\.0\.0\.1: .*Connection refused/, message);
        const condition = JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "job", job.metadata.name, "--output=json")).stdout).status.conditions.find((c: any) => c.type === "Failed");
        assert.equal(condition?.reason, "BackoffLimitExceeded");
        // The schedule goes on: the CronJob is not suspended, and the failure is not a good backup.
        const after = JSON.parse((await kubectl(e2e, `--namespace=${namespace}`, "get", "cronjob", "headscale-backup", "--output=json")).stdout);
        assert.equal(after.spec.suspend ?? false, false);
        assert.equal(after.spec.schedule, cron.spec.schedule);
        assert.equal(await lastGood(), lastGoodBefore, "the CronJob still names the earlier good backup's time");
        const now = await pod(e2e, "headscale-0");
        assert.equal(now.metadata.uid, before.metadata.uid, "the same headscale pod");
        assert.deepEqual(restarts(now), restarts(before));
        assert.equal(await deviceReaches(e2e, lanUrl, 5), "lan-service");
    });

    it("bad input: a full disk on the VPS: the job fails with the error, the older backups stay intact, and the next run stores again", async () => {
        e2e.needUp();
        const store = `${backupChroot}/backups`;
        const sums = async () => {
            const r = await e2e.vm.ssh(`cd ${store} && ls -1 | grep -v '^filler$' | xargs -r sha256sum --`);
            assert.equal(r.status, 0, r.stderr);
            return r.stdout;
        };
        const before = await sums();
        assert.match(before, /headscale-\d{8}T\d{6}Z\.tar\.age/);
        // The store moved onto a small filesystem of its own, with the same backups, then filled up.
        const fill = await e2e.vm.ssh([
            "set -e",
            "rm -rf /run/e2e-store && mkdir /run/e2e-store",
            `cp -a ${store}/. /run/e2e-store/`,
            `mount -t tmpfs -o size=2m,mode=0700,uid=$(id -u ${backupStoreUser}),gid=$(id -g ${backupStoreUser}) e2e-full ${store}`,
            `cp -a /run/e2e-store/. ${store}/`,
            `dd if=/dev/zero of=${store}/filler bs=4k status=none 2>/dev/null || true`,
            `df -k ${store} | tail -n 1`,
        ].join("\n"));
        assert.equal(fill.status, 0, fill.stderr);
        try {
            assert.equal(await sums(), before, "the copy holds the same backups");
            const started = Date.now();
            await kubectl(e2e, `--namespace=${namespace}`, "create", "job", "--from=cronjob/headscale-backup", "e2e-backup-full");
            const { succeeded, pods } = await finishedJob(e2e, "e2e-backup-full", 300_000);
            const message = await jobMessage(e2e, "e2e-backup-full");
            e2e.figures.report("backup to a full store: failed for good after", (Date.now() - started) / 1000, `${pods} tries: ${/could not store.*/.exec(message)?.[0]}`);
            assert.ok(!succeeded);
            assert.match(message, /overlay-backup: error: could not store headscale-\d{8}T\d{6}Z\.tar\.age on \S+: .*the store has [0-4] KiB free/, message);
            assert.equal(await sums(), before, "the older backups are intact, and no part of the new one is left");
        } finally {
            await e2e.vm.ssh(`umount ${store}; rm -rf /run/e2e-store`);
        }
        assert.equal(await sums(), before);
        await kubectl(e2e, `--namespace=${namespace}`, "create", "job", "--from=cronjob/headscale-backup", "e2e-backup-after");
        const next = await finishedJob(e2e, "e2e-backup-after", 300_000);
        assert.ok(next.succeeded, `the next backup failed: ${await jobMessage(e2e, "e2e-backup-after")}`);
        e2e.backupName = await newestBackup(e2e);
        assert.ok(!before.includes(e2e.backupName), `the next run stored a new backup: ${e2e.backupName}`);
        assert.equal(await deviceReaches(e2e, lanUrl, 5), "lan-service");
    });

    it("bad input: a backup that does not decrypt with the stack's identity, or is corrupted, is refused, and the running headscale is untouched", async () => {
        e2e.needUp();
        const backupName = e2e.backupName;
        assert.ok(backupName, "the backup test ran");
        const before = await pod(e2e, "headscale-0");
        const stranger = await mustExec(undefined, "age-keygen", []);
        const strangerRecipient = /public key: (age1\S+)/.exec(stranger.stderr + stranger.stdout)![1];
        const bogus = { wrongKey: "headscale-20000101T000000Z.tar.age", corrupted: "headscale-20000102T000000Z.tar.age" };
        const sealed = await mustExec(undefined, "age", ["-r", strangerRecipient, "-a"], { input: "not a backup" });
        const store = `${backupChroot}/backups`;
        const put = await e2e.vm.ssh([
            `printf '%s' ${shellQuote(sealed.stdout)} > ${store}/${bogus.wrongKey}`,
            // The real backup with one byte changed in its last block: age's authentication fails.
            `cp ${store}/${backupName} ${store}/${bogus.corrupted}`,
            `printf 'X' | dd of=${store}/${bogus.corrupted} bs=1 seek=$(($(stat -c %s ${store}/${bogus.corrupted}) - 20)) conv=notrunc status=none`,
            `chown ${backupStoreUser}: ${store}/${bogus.wrongKey} ${store}/${bogus.corrupted}`,
        ].join("\n"));
        assert.equal(put.status, 0, put.stderr);
        for (const name of Object.values(bogus)) {
            await setConfig(e2e, "restoreBackup", name);
            const started = Date.now();
            const r = await e2e.project.run(["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
            e2e.figures.report(`restore of ${name === bogus.wrongKey ? "a backup for another identity" : "a corrupted backup"}: refused after`, (Date.now() - started) / 1000);
            assert.notEqual(r.status, 0, "pulumi up succeeded");
            assert.match(r.stdout + r.stderr, new RegExp(`refused ${name.replace(/\./g, "\\.")}: it does not decrypt with this stack's backup identity`), (r.stdout + r.stderr).slice(-3000));
            const after = await pod(e2e, "headscale-0");
            assert.equal(after.metadata.uid, before.metadata.uid, "the same headscale pod");
            assert.deepEqual(restarts(after), restarts(before));
            assert.ok(!fs.existsSync(path.join(await dataDir(e2e), "restore-ready")), "nothing staged");
        }
        await e2e.vm.ssh(`rm ${store}/${bogus.wrongKey} ${store}/${bogus.corrupted}`);
        await mustPulumi(e2e.project, ["config", "rm", "--stack", stack, "restoreBackup"]);
        await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        assert.equal(await deviceReaches(e2e, lanUrl, 5), "lan-service");
    });

    it("drill: headscale's volume wiped, the latest backup restored the documented way: the same noise key and node IDs, and the device reaches the LAN without a new key", async () => {
        e2e.needUp();
        const nodes = async () => (JSON.parse((await headscaleCli(e2e, "nodes", "list", "--output", "json")).stdout) as any[]).map((n) => `${n.id} ${n.name}`).sort();
        const noiseKey = async () => {
            const r = await exec(e2e.world.home, "curl", ["-sf", "--max-time", "5", `http://${await headscaleAddress(e2e)}:8080/key?v=120`]);
            return JSON.parse(r.stdout || "{}").publicKey;
        };
        const nodesBefore = await nodes();
        const keyBefore = await noiseKey();
        assert.match(String(keyBefore), /^mkey:/);
        const keysBefore = JSON.parse((await headscaleCli(e2e, "preauthkeys", "list", "--output", "json")).stdout).length;

        const wiped = Date.now();
        const data = await dataDir(e2e);
        for (const file of fs.readdirSync(data)) fs.rmSync(path.join(data, file), { recursive: true, force: true });
        await kubectl(e2e, `--namespace=${namespace}`, "delete", "pod", "headscale-0", "--wait=true", "--timeout=60s");
        await setConfig(e2e, "restoreBackup", "latest");
        const r = await e2e.project.run(["up", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        // Whatever happens below, later tests start without a restore pending.
        await mustPulumi(e2e.project, ["config", "rm", "--stack", stack, "restoreBackup"]);
        assert.equal(r.status, 0, `${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`);
        const restored = (Date.now() - wiped) / 1000;
        await untilDeviceReachesLan(e2e, 300_000);
        e2e.figures.report("drill: wipe → pulumi up (restoreBackup latest) done after", restored, `the device reached the LAN ${((Date.now() - wiped) / 1000).toFixed(1)} s after the wipe`);
        assert.match(r.stdout + r.stderr, /job\.batch\/headscale-restore-\S+ succeeded/);
        const aside = fs.readdirSync(data).filter((f) => f.startsWith("pre-restore-"));
        assert.equal(aside.length, 1, "the wiped state was kept aside");
        assert.equal(fs.readFileSync(path.join(data, aside[0], "replaced-by"), "utf8").trim(), e2e.backupName, "the latest backup was restored");
        assert.equal(await noiseKey(), keyBefore, "the same noise public key");
        assert.deepEqual(await nodes(), nodesBefore, "the same nodes with the same IDs");
        assert.equal(JSON.parse((await headscaleCli(e2e, "preauthkeys", "list", "--output", "json")).stdout).length, keysBefore, "no key was minted");
        await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
    });

    it("bad input: pulumi preview refuses a skipped minor version and a downgrade with the allowed versions; the next patch shows the backup before the StatefulSet's change", async () => {
        e2e.needUp();
        const current = String(e2e.outputs.headscaleVersion);
        assert.equal(current, "0.29.2");
        for (const [tag, what] of [["0.31.0", "skips a minor version"], ["0.28.9", "is older than the running 0.29.2"]]) {
            await setConfig(e2e, "headscaleImage", `ghcr.io/juanfont/headscale:${tag}`);
            const r = await e2e.project.run(["preview", "--stack", stack], { timeoutMs: 300_000 });
            assert.notEqual(r.status, 0, `preview accepted ${tag}`);
            assert.match(r.stdout + r.stderr, new RegExp(`headscaleImage: ${tag.replace(/\./g, "\\.")} ${what}.*Allowed next: 0\\.29\\.2 or a later 0\\.29\\.x patch, or 0\\.30\\.x`));
        }
        await setConfig(e2e, "headscaleImage", "ghcr.io/juanfont/headscale:0.29.3");
        const r = await mustPulumi(e2e.project, ["preview", "--stack", stack], { timeoutMs: 300_000 });
        const backupAt = r.stdout.search(/headscale-backups-before-upgrade +replace/);
        const statefulSetAt = r.stdout.search(/headscale-statefulset +update/);
        assert.ok(backupAt >= 0 && statefulSetAt >= 0, r.stdout.slice(-4000));
        assert.ok(backupAt < statefulSetAt, "the backup comes before the StatefulSet's change");
        await setConfig(e2e, "headscaleImage", "ghcr.io/juanfont/headscale:0.29.2");
        await mustPulumi(e2e.project, ["preview", "--stack", stack, "--expect-no-changes"], { timeoutMs: 300_000 });
    });
}
