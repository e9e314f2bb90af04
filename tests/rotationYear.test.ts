// A year of the scheduled workflow with no hand on the keys: rotate.yml's own steps, run as
// Actions runs them (tests/helpers/workflowRunner.ts), once a week with OVERLAY_TODAY stepping
// 7 days, against the real Pulumi engine, the real headscale 0.29.2 and a real tailscaled as the
// runner. The program is the key half of the home stack (tests/fixtures/rotation). GitHub is
// stood in for only at its API boundary: a `gh` on PATH (tests/helpers/gh-stand-in.sh) that
// keeps what `secret set` reads on stdin as the repository's secret, and records issues; the
// "Join the tailnet" action is stood in for by `tailscale up` with the action's own inputs and
// the key that secret holds at that moment. Everything runs in a network namespace of the
// test's own.
//
// headscale keeps real time: a key minted in this test expires 90 real days on, whatever the
// simulated date. So the run's "Check the router key's expiry" step reads the real clock, and
// the test checks the simulated age of the router key the router holds at each run itself.
import assert from "node:assert/strict";
import { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import { addDays, rotationWindow } from "../config/clock";
import { keys as configKeys } from "../config/keys";
import { mustPulumi, pulumiProject, PulumiProject } from "./e2e/pulumiCli";
import { writeHeadscaleConfig } from "./helpers/headscaleServer";
import { createNetns, freePort, Netns, stopChild, waitUntil } from "./helpers/netns";
import { repoRoot } from "./helpers/stack";
import { installGhStandIn, toolBin } from "./helpers/tools";
import { expand, runJob, StepResult, Workflow, WorkflowStep } from "./helpers/workflowRunner";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-year-"));
const bin = path.join(dir, "bin");
const github = path.join(dir, "github");
const projectDir = path.join(dir, "checkout");
const routerSecretFile = path.join(dir, "router-credentials");
const repository = "alice/overlay";
const secretName = "TAILNET_CI_AUTHKEY";
const secretFile = path.join(github, "secrets", secretName);
const rotationDays = configKeys.routerKeyRotationDays.default;
const lifetimeDays = configKeys.routerKeyLifetimeDays.default;
const workflow = YAML.parse(fs.readFileSync(path.join(repoRoot, ".github", "workflows", "rotate.yml"), "utf8")) as Workflow;

/** The first scheduled run's day, and the setup's (a person's first `pulumi up`) a week before. */
const setupDay = "2027-01-04";
const weeks = 52;
/** The window crossing at which the writer token is missing (1-based), and for how many weekly runs. */
const tokenlessCrossing = 3;
const tokenlessRuns = 2;

let ns: Netns;
let project: PulumiProject;
let loginServer = "";
let headscaleEnv: NodeJS.ProcessEnv = {};

interface RunRecord {
    readonly day: string;
    readonly token: boolean;
    readonly results: StepResult[];
    readonly joined: boolean;
    readonly failedSteps: string[];
    readonly text: string;
    readonly secretBefore: string;
    readonly secretAfter: string;
    readonly routerKey: string;
    readonly issues: string[];
    readonly ms: number;
}

const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "");

function headscale(...args: string[]) {
    const r = ns.run("headscale", args, { env: headscaleEnv, timeoutMs: 30_000 });
    assert.equal(r.status, 0, `headscale ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
}

/** A runner machine's tailscaled, fresh for each run as a runner is; its log in its state directory. */
async function startTailscaled(name: string): Promise<{ socket: string; daemon: ChildProcess; log: () => string }> {
    const state = path.join(dir, "runners", name);
    fs.mkdirSync(state, { recursive: true });
    const socket = path.join(state, "sock");
    const daemon = ns.start("sh", ["-c", 'exec tailscaled --tun=userspace-networking --statedir="$0" --socket="$0/sock" --port=0 >"$0/log" 2>&1', state], headscaleEnv);
    assert.ok(await waitUntil(() => fs.existsSync(socket), 15_000), `tailscaled did not start:\n${read(path.join(state, "log"))}`);
    return { socket, daemon, log: () => read(path.join(state, "log")) };
}

function tailscaleUp(socket: string, key: string, hostname: string, extra: string[]) {
    return ns.run("tailscale", [`--socket=${socket}`, "up", `--authkey=${key}`, `--hostname=${hostname}`, ...extra, "--timeout=30s"], { env: headscaleEnv, timeoutMs: 45_000 });
}

/** The "Join the tailnet" action in the runner's stead: its own inputs, expanded as Actions would. */
function joinTailnet(socket: string, runId: string) {
    return (step: WorkflowStep) => {
        if (!step.uses?.startsWith("tailscale/github-action@")) return undefined;
        const values: Record<string, string> = { [`secrets.${secretName}`]: read(secretFile), "env.HEADSCALE_URL": loginServer, "github.run_id": runId };
        const input = (name: string) => expand(String(step.with?.[name] ?? ""), values);
        const r = tailscaleUp(socket, input("authkey"), input("hostname"), input("args").split(/\s+/).filter(Boolean));
        return { status: r.status ?? 1, output: `${r.stdout}${r.stderr}` };
    };
}

let runCount = 0;
async function scheduledRun(day: string, token: boolean): Promise<RunRecord> {
    runCount++;
    const runId = String(runCount);
    const temp = path.join(dir, "runs", runId);
    fs.mkdirSync(path.join(temp, "scripts"), { recursive: true });
    const summary = path.join(temp, "summary.md");
    const issuesBefore = fs.existsSync(path.join(github, "issues")) ? fs.readdirSync(path.join(github, "issues")).length : 0;
    const secretBefore = read(secretFile);
    const runner = await startTailscaled(`run-${runId}`);
    const started = Date.now();
    let results: StepResult[];
    try {
        results = runJob(workflow, "up", {
            cwd: projectDir,
            scriptDir: path.join(temp, "scripts"),
            prefix: ["ip", "netns", "exec", ns.name],
            stepTimeoutMs: 240_000,
            env: {
                ...(project.environment() as Record<string, string>),
                HOME: dir,
                RUNNER_TEMP: temp,
                GITHUB_STEP_SUMMARY: summary,
                GITHUB_REPOSITORY: repository,
                GH_STAND_IN: github,
                OVERLAY_TODAY: day,
            },
            expressions: {
                "secrets.PULUMI_BACKEND_URL": project.environment().PULUMI_BACKEND_URL!,
                "secrets.PULUMI_CONFIG_PASSPHRASE": project.environment().PULUMI_CONFIG_PASSPHRASE!,
                "secrets.KUBECONFIG": "apiVersion: v1",
                "secrets.GITHUB_TOKEN": "stand-in job token",
                // A secret that is not set is an empty string in Actions.
                "secrets.TAILNET_KEY_WRITER_TOKEN": token ? "github_pat_stand-in-writer" : "",
                "github.workspace": projectDir,
                "github.server_url": "https://github.com",
                "github.repository": repository,
                "github.run_id": runId,
            },
            uses: joinTailnet(runner.socket, runId),
            // headscale's clock is real (see the top of this file).
            stepEnv: (step) => (step.name === "Check the router key's expiry" ? { OVERLAY_TODAY: undefined } : {}),
        });
    } finally {
        // The runner leaves: an ephemeral node logs out, and the machine is gone.
        ns.run("tailscale", [`--socket=${runner.socket}`, "logout"], { env: headscaleEnv, timeoutMs: 20_000 });
        await stopChild(runner.daemon);
    }
    const ms = Date.now() - started;
    const issueDir = path.join(github, "issues");
    const issues = fs.existsSync(issueDir) ? fs.readdirSync(issueDir).sort((a, b) => parseInt(a) - parseInt(b)).slice(issuesBefore).map((f) => read(path.join(issueDir, f))) : [];
    const joined = results.find((r) => r.name === "Join the tailnet");
    return {
        day,
        token,
        results,
        joined: joined?.ran === true && joined.status === 0,
        failedSteps: results.filter((r) => r.ran && r.status !== 0).map((r) => r.name),
        text: [...results.map((r) => r.output), read(summary), ...issues].join("\n"),
        secretBefore,
        secretAfter: read(secretFile),
        routerKey: read(routerSecretFile),
        issues,
        ms,
    };
}

/** Whether headscale refuses a key now: a fresh tailscaled tries to join with it. */
async function refused(key: string, name: string): Promise<{ refused: boolean; message: string }> {
    const runner = await startTailscaled(name);
    try {
        const r = tailscaleUp(runner.socket, key, name, [`--login-server=${loginServer}`]);
        return { refused: r.status !== 0, message: `${r.stdout}${r.stderr}`.trim().split("\n").slice(-1)[0] };
    } finally {
        ns.run("tailscale", [`--socket=${runner.socket}`, "logout"], { env: headscaleEnv, timeoutMs: 20_000 });
        await stopChild(runner.daemon);
    }
}

describe("a year of scheduled runs with no hand on the keys (real engine, headscale and tailscaled)", () => {
    before(async () => {
        toolBin(bin, ["headscale", "tailscale", "tailscaled"]);
        installGhStandIn(bin);
        // `npm ci` has nothing to do: the checkout's node_modules is this repository's.
        fs.writeFileSync(path.join(bin, "npm"), "#!/bin/sh\necho 'npm stand-in: node_modules is in place'\n", { mode: 0o755 });
        fs.mkdirSync(github);

        ns = createNetns("ovl-year");
        ns.addDeadEndRoute();
        const httpPort = await freePort();
        loginServer = `http://127.0.0.1:${httpPort}`;
        const config = writeHeadscaleConfig(dir, httpPort, { lanRoutes: ["192.168.1.0/24"], logLevel: "warn" });
        headscaleEnv = { PATH: `${bin}:${process.env.PATH}`, HEADSCALE_CONFIG: config };
        const log = path.join(dir, "headscale.log");
        ns.start("sh", ["-c", 'exec headscale serve >"$0" 2>&1', log], headscaleEnv);
        assert.ok(await waitUntil(() => ns.run("curl", ["-sf", `${loginServer}/health`]).status === 0, 30_000), `headscale did not start:\n${read(log)}`);

        // The checkout: the project file, tsconfig.json (ts-node compiles the program with it),
        // the scripts the steps call, npm ci's node_modules.
        fs.mkdirSync(projectDir);
        for (const entry of ["tsconfig.json", "scripts", "node_modules"]) fs.symlinkSync(path.join(repoRoot, entry), path.join(projectDir, entry));
        project = pulumiProject({
            ns,
            dir: projectDir,
            pathPrefix: [bin],
            env: { HEADSCALE_CONFIG: headscaleEnv.HEADSCALE_CONFIG, GH_STAND_IN: github },
            pulumiYaml: `name: overlay\nmain: ${path.join(repoRoot, "tests", "fixtures", "rotation", "index.ts")}\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n`,
        });
        await mustPulumi(project, ["stack", "init", "home"]);
        const stackFile = YAML.parse(read(project.stackFile("home"))) ?? {};
        stackFile.config = {
            "overlay:loginServer": loginServer,
            "overlay:routerSecretFile": routerSecretFile,
            "overlay:userKeys": [{ name: "ci", tags: ["tag:ci"], reusable: true, ephemeral: true, lifetimeDays: 90, githubSecret: { repository, name: secretName } }],
        };
        fs.writeFileSync(project.stackFile("home"), YAML.stringify(stackFile));
    });

    after(() => {
        ns?.destroy();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("setup, once: the first pulumi up, given the writer token, writes the tag:ci key into the repository secret", async () => {
        const r = await mustPulumi(project, ["up", "--stack", "home", "--yes"], {
            env: { OVERLAY_TODAY: setupDay, TAILNET_KEY_WRITER_TOKEN: "github_pat_stand-in-writer" },
            timeoutMs: 240_000,
        });
        assert.match(read(secretFile), /^hskey-auth-/);
        assert.equal(read(`${secretFile}.token`), "github_pat_stand-in-writer");
        assert.doesNotMatch(r.stdout + r.stderr, new RegExp(read(secretFile)));
    });

    it(`52 weekly runs: every run joins with the key the secret holds and succeeds; each rotation stores the new key, then the old one is refused; without the token the rotating run opens an issue and the next still joins`, async () => {
        const runs: RunRecord[] = [];
        const windows: string[] = [];
        const routerKeyMinted = new Map<string, string>([[read(routerSecretFile), setupDay]]);
        const allKeys = new Set([read(secretFile), read(routerSecretFile)]);
        const rotations: { day: string; old: string; refusal: string }[] = [];
        let crossings = 0;
        let tokenlessLeft = 0;
        for (let week = 1; week <= weeks; week++) {
            const day = addDays(setupDay, 7 * week);
            const crossing = rotationWindow(day, rotationDays).start !== rotationWindow(addDays(day, -7), rotationDays).start;
            if (crossing) {
                crossings++;
                windows.push(rotationWindow(day, rotationDays).start);
                if (crossings === tokenlessCrossing) tokenlessLeft = tokenlessRuns;
            }
            const token = tokenlessLeft === 0;
            if (tokenlessLeft > 0) tokenlessLeft--;
            // Which key the secret holds, as the last good run's outputs say: the issue must name it.
            const held = token ? undefined : (JSON.parse((await mustPulumi(project, ["stack", "output", "--stack", "home", "--json", "githubSecretKeys"])).stdout) as Record<string, { keyId: string; expires: string }>).ci;

            const run = await scheduledRun(day, token);
            runs.push(run);
            if (!routerKeyMinted.has(run.routerKey)) routerKeyMinted.set(run.routerKey, day);
            for (const key of [run.secretAfter, run.routerKey]) allKeys.add(key);
            const where = `week ${week} (${day}${crossing ? ", a new window" : ""}${token ? "" : ", no writer token"})`;
            console.log(`# ${where}: ${run.failedSteps.length ? `failed: ${run.failedSteps.join(", ")}` : "succeeded"} in ${(run.ms / 1000).toFixed(1)} s`);

            // Every run joins with the key the secret holds at that moment.
            assert.ok(run.joined, `${where}: the runner could not join:\n${run.results.find((r) => r.name === "Join the tailnet")?.output}`);
            // The router key the router holds never comes near its end (simulated days; 14 is the check's margin).
            const age = (Date.parse(day) - Date.parse(routerKeyMinted.get(run.routerKey)!)) / 86_400_000;
            assert.ok(age < lifetimeDays - 14, `${where}: the router's key is ${age} days old`);

            if (token) {
                assert.deepEqual(run.failedSteps, [], `${where}:\n${run.results.map((r) => `--- ${r.name} (${r.status})\n${r.output.slice(-3000)}`).join("\n")}`);
                assert.deepEqual(run.issues, [], `${where}: an issue was opened`);
            } else {
                // The rotating run without the token: red, an issue that says what to do, the old key kept.
                assert.deepEqual(run.failedSteps, ["pulumi up --refresh"], `${where}`);
                assert.equal(run.issues.length, 1, `${where}: no issue`);
                const expires = `${held!.expires.slice(0, 10)} ${held!.expires.slice(11, 16)} UTC`;
                assert.ok(run.issues[0].includes(`The secret \`${secretName}\` of ${repository} still holds key ${held!.keyId}, which expires on ${expires}.`), run.issues[0]);
                assert.match(run.issues[0], /save it as the repository secret `TAILNET_KEY_WRITER_TOKEN`/);
                assert.equal(run.secretAfter, run.secretBefore, `${where}: the secret changed without the token`);
                assert.equal((await refused(run.secretBefore, `check-${week}`)).refused, false, `${where}: the key the secret holds was expired`);
            }
            if (run.secretAfter !== run.secretBefore) {
                // A rotation: the new key was stored; the key the secret held before is refused now.
                assert.ok(token);
                const old = await refused(run.secretBefore, `old-key-${week}`);
                assert.ok(old.refused, `${where}: headscale still accepts the key the secret held before`);
                rotations.push({ day, old: run.secretBefore, refusal: old.message });
                console.log(`# ${where}: the secret holds a new key; the one it held is refused: ${old.message}`);
            }
        }

        const failed = runs.filter((r) => r.failedSteps.length > 0);
        console.log(`# ${runs.length} weekly runs, ${runs.filter((r) => r.joined).length} joined, ${runs.length - failed.length} succeeded, ${failed.length} failed without the writer token (by design)`);
        console.log(`# windows crossed: ${crossings} (${windows.join(", ")}); the secret rotated ${rotations.length} times; router keys: ${routerKeyMinted.size}`);
        console.log(`# run time: ${(runs.reduce((s, r) => s + r.ms, 0) / 1000).toFixed(0)} s, ${(runs.reduce((s, r) => s + r.ms, 0) / runs.length / 1000).toFixed(1)} s a run`);
        const stepNames = [...new Set(runs.flatMap((r) => r.results.filter((x) => x.ran).map((x) => x.name)))];
        const mean = (name: string) => {
            const ran = runs.flatMap((r) => r.results.filter((x) => x.ran && x.name === name));
            return `${name} ${(ran.reduce((s, x) => s + x.ms, 0) / ran.length / 1000).toFixed(1)} s (${ran.length} runs)`;
        };
        console.log(`# mean step times: ${stepNames.map(mean).join("; ")}`);
        assert.equal(runs.length, weeks);
        assert.ok(crossings >= 6, `${crossings} windows crossed in a year`);
        // One rotation of the secret per window crossed: the tokenless crossing rotates a run later.
        assert.equal(rotations.length, crossings);
        assert.equal(failed.length, tokenlessRuns);
        assert.equal(routerKeyMinted.size, crossings + 1, "a new router key at each window, the tokenless one included");

        // Every key minted is one of those the test saw: headscale lists no other.
        const listed = JSON.parse(headscale("preauthkeys", "list", "--output", "json")) as unknown[];
        assert.equal(listed.length, allKeys.size, `headscale lists ${listed.length} keys, the test saw ${allKeys.size}`);
        // No key in any run's log, summary or issue.
        for (const key of allKeys) {
            for (const run of runs) assert.ok(!run.text.includes(key), `a key appears in the output of the run on ${run.day}`);
        }
        // The secret was written only by `gh secret set`, each time with the writer token.
        const calls = read(path.join(github, "calls")).split("\n").filter((l) => l.startsWith("secret set"));
        assert.equal(calls.length, rotations.length + 1);
        assert.ok(calls.every((c) => c === `secret set ${secretName} --repo ${repository} --app actions`), calls.join("\n"));
    });
});
