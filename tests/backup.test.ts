// The backups' pieces that need no cluster: the age key Pulumi derives, the upgrade guard's
// rule, and the program's answer to each kind of headscaleImage change.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { ageKeyFromBytes, ageKeyFromIdentity } from "../components/backup/ageKey";
import { imageVersion, upgradeProblem } from "../config/upgrade";
import { setPreviousStackOutputs } from "../plan/mocks";
import { evaluate, valueOf } from "./helpers/evaluate";
import { exampleConfig } from "./helpers/stack";
import { requireTool } from "./helpers/tools";

describe("the backups' age key", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-age-"));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("is the identity and recipient that age itself derives, and decrypts what is encrypted to it", () => {
        const key = ageKeyFromBytes(randomBytes(32));
        assert.match(key.identity, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
        const identityFile = path.join(dir, "identity");
        fs.writeFileSync(identityFile, `${key.identity}\n`, { mode: 0o600 });
        const derived = spawnSync(requireTool("age-keygen"), ["-y", identityFile], { encoding: "utf8" });
        assert.equal(derived.status, 0, derived.stderr);
        assert.equal(derived.stdout.trim(), key.recipient);

        const sealed = spawnSync(requireTool("age"), ["-r", key.recipient], { input: "the tailnet" });
        assert.equal(sealed.status, 0, String(sealed.stderr));
        const opened = spawnSync("age", ["-d", "-i", identityFile], { input: sealed.stdout, encoding: "utf8" });
        assert.equal(opened.stdout, "the tailnet");
        const other = path.join(dir, "other");
        fs.writeFileSync(other, `${ageKeyFromBytes(randomBytes(32)).identity}\n`, { mode: 0o600 });
        assert.notEqual(spawnSync("age", ["-d", "-i", other], { input: sealed.stdout }).status, 0, "another identity decrypted it");
    });
});

describe("a backup identity of the user's own (backupIdentity)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-age-"));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("is read as age-keygen wrote it, with the recipient age derives", () => {
        const file = path.join(dir, "key.txt");
        const made = spawnSync(requireTool("age-keygen"), ["-o", file], { encoding: "utf8" });
        assert.equal(made.status, 0, made.stderr);
        const identity = fs.readFileSync(file, "utf8").split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-1"))!;
        const recipient = spawnSync("age-keygen", ["-y", file], { encoding: "utf8" }).stdout.trim();
        assert.deepEqual(ageKeyFromIdentity(identity), { identity, recipient });
    });

    it("takes the place of the generated key: the stack encrypts to it and outputs it as the identity", async () => {
        const identity = ageKeyFromBytes(randomBytes(32));
        const run = await evaluate(exampleConfig({ set: { backupIdentity: identity.identity }, secret: ["backupIdentity"] }));
        assert.equal(run.error, undefined, run.error?.message);
        assert.equal(await valueOf(run.exports.backupRecipient), identity.recipient);
        assert.equal(await valueOf(run.exports.backupIdentity), identity.identity);
        assert.ok(!run.resources.some((r) => r.type === "random:index/randomBytes:RandomBytes"), "no key is generated");
        assert.equal(run.inputs("headscale-backups-credentials").stringData, "[secret]");

        const generated = await evaluate(exampleConfig());
        assert.equal(generated.error, undefined);
        assert.ok(generated.resources.some((r) => r.type === "random:index/randomBytes:RandomBytes"));
        assert.match(await valueOf<string>(generated.exports.backupRecipient), /^age1/);
        assert.notEqual(await valueOf(generated.exports.backupRecipient), identity.recipient);
    });
});

describe("the upgrade guard's rule", () => {
    const v = (text: string) => imageVersion(`ghcr.io/juanfont/headscale:${text}`)!;

    it("reads the version from the tag, with or without v and a digest", () => {
        assert.deepEqual(v("0.29.2"), { major: 0, minor: 29, patch: 2 });
        assert.deepEqual(v(`v0.30.1@sha256:${"a".repeat(64)}`), { major: 0, minor: 30, patch: 1 });
        assert.equal(imageVersion("ghcr.io/juanfont/headscale:stable"), undefined);
    });

    it("allows the same version, a later patch and the next minor version", () => {
        for (const next of ["0.29.2", "0.29.3", "0.29.10", "0.30.0", "0.30.4"]) assert.equal(upgradeProblem(v("0.29.2"), v(next)), undefined, next);
    });

    it("refuses a skipped minor version and a downgrade, naming what may come next", () => {
        const skip = upgradeProblem(v("0.29.2"), v("0.31.0"));
        assert.match(skip ?? "", /0\.31\.0 skips a minor version after the running 0\.29\.2/);
        assert.match(skip ?? "", /Allowed next: 0\.29\.2 or a later 0\.29\.x patch, or 0\.30\.x/);
        assert.match(upgradeProblem(v("0.29.2"), v("0.29.1")) ?? "", /0\.29\.1 is older than the running 0\.29\.2/);
        assert.match(upgradeProblem(v("0.29.2"), v("0.28.0")) ?? "", /older/);
        assert.match(upgradeProblem(v("0.29.2"), v("1.0.0")) ?? "", /skips/);
    });
});

describe("the program and the deployed headscale version", () => {
    after(() => setPreviousStackOutputs({}));
    const withImage = (tag: string) => exampleConfig({ set: { headscaleImage: `ghcr.io/juanfont/headscale:${tag}` } });

    it("records the deployed version as a stack output", async () => {
        setPreviousStackOutputs({});
        const run = await evaluate(withImage("0.29.2"));
        assert.equal(run.error, undefined);
        assert.equal(run.exports.headscaleVersion, "0.29.2");
    });

    it("builds the stack for a later patch or the next minor version", async () => {
        setPreviousStackOutputs({ headscaleVersion: "0.28.0" });
        for (const tag of ["0.28.1", "0.29.2"]) {
            const run = await evaluate(withImage(tag));
            assert.equal(run.error, undefined, `${tag}: ${run.error?.message}`);
            assert.ok(run.resources.some((r) => r.name === "headscale-statefulset"), tag);
        }
    });

    it("stops on a skipped minor version or a downgrade before registering anything", async () => {
        for (const [deployed, tag] of [["0.27.3", "0.29.2"], ["0.29.3", "0.29.2"]]) {
            setPreviousStackOutputs({ headscaleVersion: deployed });
            const run = await evaluate(withImage(tag));
            assert.ok(run.error && pulumi.RunError.isInstance(run.error), `${deployed} → ${tag} was accepted`);
            assert.match(run.error.message, /^headscaleImage: .*Allowed next: /);
            assert.ok(run.error.message.includes(`deployed now: ${deployed}`), run.error.message);
            assert.deepEqual(run.resources.map((r) => r.name), []);
        }
    });

    it("refuses an image whose tag names no version", async () => {
        setPreviousStackOutputs({});
        const run = await evaluate(exampleConfig({ set: { headscaleImage: `ghcr.io/juanfont/headscale@sha256:${"b".repeat(64)}` } }));
        assert.match(run.error?.message ?? "", /headscaleImage.*must name its version in the tag/);
    });
});
