// Runs a workflow job's `run:` steps as GitHub Actions would, on this machine, for the tests:
// each step's text in a file, under the shell Actions picks (the step's `shell`, else the job's
// or the workflow's `defaults.run.shell`, else `bash -e {0}`), with the job's and the step's
// env, in order, each step's `if:` decided from the job's status so far. GitHub itself cannot
// be reached here: `uses:` steps are skipped unless the caller stands in for the action, and
// the programs the steps call (pulumi, gh, npm) are whatever stand-ins the caller puts first on
// PATH. Expressions (`${{ … }}`) in env values come from the caller's table; one in a `run:`
// text, or an `if:` this runner does not know, stops the test rather than being guessed.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface WorkflowStep {
    name?: string;
    uses?: string;
    run?: string;
    shell?: string;
    if?: string;
    env?: Record<string, string>;
    with?: Record<string, unknown>;
}

export interface Workflow {
    defaults?: { run?: { shell?: string } };
    env?: Record<string, string>;
    jobs: Record<string, { defaults?: { run?: { shell?: string } }; env?: Record<string, string>; steps: WorkflowStep[] }>;
}

export interface StepResult {
    name: string;
    ran: boolean;
    status: number | null;
    output: string;
    /** How long the step took. */
    ms: number;
}

/** The shell a step's `run:` gets, as Actions decides it ("" for its default, `bash -e {0}`). */
export function shellOf(workflow: Workflow, job: string, step: WorkflowStep): string {
    return step.shell ?? workflow.jobs[job].defaults?.run?.shell ?? workflow.defaults?.run?.shell ?? "";
}

/** The command line Actions runs a script file with, for a shell keyword (GitHub's documented table). */
export function shellCommand(shell: string, file: string): string[] {
    switch (shell) {
        case "":
            return ["bash", "-e", file];
        case "bash":
            return ["bash", "--noprofile", "--norc", "-eo", "pipefail", file];
        case "sh":
            return ["sh", "-e", file];
        default:
            if (!shell.includes("{0}")) throw new Error(`unknown shell ${shell}`);
            return shell.replace("{0}", file).split(/\s+/);
    }
}

/** A text with its `${{ … }}` expressions replaced from the table; one not in it is an error. */
export function expand(value: string, expressions: Record<string, string>): string {
    return value.replace(/\$\{\{\s*(.+?)\s*\}\}/g, (_, expr: string) => {
        if (!(expr in expressions)) throw new Error(`no value for the expression ${expr}`);
        return expressions[expr];
    });
}

export interface RunJobOptions {
    readonly cwd: string;
    readonly scriptDir: string;
    /** What the runner itself sets: RUNNER_TEMP, GITHUB_* …, PATH with the stand-ins first. */
    readonly env: Record<string, string>;
    /** The values of `${{ … }}` in env entries. */
    readonly expressions: Record<string, string>;
    /** Runs a `uses:` step in the action's stead; without it (or when it returns undefined) the step is skipped. */
    readonly uses?: (step: WorkflowStep, env: Record<string, string>) => { status: number; output: string } | undefined;
    /** Variables for one step over the rest (undefined unsets one). */
    readonly stepEnv?: (step: WorkflowStep) => Record<string, string | undefined>;
    /** Words before each step's shell, e.g. `ip netns exec NAME`. */
    readonly prefix?: readonly string[];
    readonly stepTimeoutMs?: number;
}

/** Runs one job's steps, in order, as Actions would. */
export function runJob(workflow: Workflow, job: string, options: RunJobOptions): StepResult[] {
    const results: StepResult[] = [];
    let failed = false;
    const jobEnv = { ...workflow.env, ...workflow.jobs[job].env };
    workflow.jobs[job].steps.forEach((step, index) => {
        const name = step.name ?? step.run ?? step.uses ?? `step ${index}`;
        const condition = step.if ?? "success()";
        const wanted = ({ "success()": !failed, "failure()": failed, "always()": true } as Record<string, boolean | undefined>)[condition];
        if (wanted === undefined) throw new Error(`the runner does not know the condition ${condition}`);
        const skipped = { name, ran: false, status: null, output: "", ms: 0 };
        if (!wanted) return void results.push(skipped);
        const env = { ...options.env };
        for (const [key, value] of Object.entries({ ...jobEnv, ...step.env })) env[key] = expand(String(value), options.expressions);
        const started = Date.now();
        if (step.uses !== undefined) {
            const action = options.uses?.(step, env);
            if (action && action.status !== 0) failed = true;
            return void results.push(action ? { name, ran: true, ...action, ms: Date.now() - started } : skipped);
        }
        if (step.run === undefined) return void results.push(skipped);
        for (const [key, value] of Object.entries(options.stepEnv?.(step) ?? {})) {
            if (value === undefined) delete env[key];
            else env[key] = value;
        }
        if (step.run.includes("${{")) throw new Error(`an expression in the run text of ${name}`);
        const file = path.join(options.scriptDir, `step-${index}.sh`);
        fs.writeFileSync(file, step.run);
        const [program, ...args] = [...(options.prefix ?? []), ...shellCommand(shellOf(workflow, job, step), file)];
        const r = spawnSync(program, args, { cwd: options.cwd, env, encoding: "utf8", timeout: options.stepTimeoutMs ?? 60_000 });
        const status = r.status ?? 1;
        if (status !== 0) failed = true;
        results.push({ name, ran: true, status, output: `${r.stdout}${r.stderr}`, ms: Date.now() - started });
    });
    return results;
}
