// The offline plan: evaluates the whole program under Pulumi's mock runtime with a stack's
// config and writes everything `pulumi up` would apply into out/<stack>/, secrets redacted.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { RawConfig, secretKeyNames, validateConfig, formatProblems } from "../config";
import { today } from "../config/clock";
import { Artifact, resourceArtifacts } from "./artifacts";
import { placeholderKeypair } from "./placeholderKeys";
import { RecordedResource, startRecording } from "./recorder";
import { readStackFile, StackFile } from "./stackFile";
import { hashValue, Json, SECRET, showValue } from "./values";

const secretSettings: ReadonlySet<string> = new Set(secretKeyNames);

export interface PlanOptions {
    /** Directory holding Pulumi.yaml, Pulumi.<stack>.yaml and index.ts. */
    readonly projectDir: string;
    readonly stack: string;
    /** Where to write; replaced as a whole only when the plan succeeds. */
    readonly outDir: string;
}

export interface PendingSecret {
    readonly key: string;
    readonly reason: string;
}

export interface ResourceSummary {
    readonly type: string;
    readonly name: string;
    readonly parent: string | null;
    readonly dependsOn: string[];
    readonly provider: string | null;
    readonly secretInputs: string[];
    readonly secretOutputs: string[];
    readonly inputsSha256: string;
}

export interface Summary {
    readonly project: string;
    readonly stack: string;
    /** The day the plan was evaluated as of (it decides the key rotation window). */
    readonly date: string;
    readonly setBeforeUp: PendingSecret[];
    readonly outputs: Record<string, Json>;
    readonly resources: ResourceSummary[];
    readonly artifacts: { kind: string; path: string }[];
}

export type PlanResult = { readonly ok: true; readonly summary: Summary } | { readonly ok: false; readonly message: string };

/** Runs the plan once. It installs the mock runtime, so call it once per process. */
export async function runPlan(options: PlanOptions): Promise<PlanResult> {
    const file = readStackFile(options.projectDir, options.stack);
    const prepared = withPlaceholderSecrets(file, options.stack);
    const checked = validateConfig(prepared.raw);
    if (!checked.ok) return { ok: false, message: formatProblems(checked.problems) };

    const recorded = await startRecording(file.project, options.stack);
    pulumi.runtime.setAllConfig(prepared.raw.values, [...prepared.raw.secretKeys]);
    const program = await (require(path.resolve(options.projectDir, "index.ts")) as () => Promise<Record<string, unknown>>)();
    const outputs = await showOutputs(program);
    await pulumi.runtime.disconnect();

    const artifacts: Artifact[] = [
        { kind: "stack-config", path: "config.json", content: json(shownConfig(checked.values as Record<string, unknown>)) },
        { kind: "stack-outputs", path: "outputs.json", content: json(outputs) },
        ...recorded.flatMap(resourceArtifacts),
    ];
    const summary: Summary = {
        project: file.project,
        stack: options.stack,
        date: today(),
        setBeforeUp: prepared.pending,
        outputs,
        resources: summarise(recorded),
        artifacts: [...artifacts, { kind: "summary", path: "summary.json" }]
            .map(({ kind, path: p }) => ({ kind, path: p }))
            .sort((a, b) => a.path.localeCompare(b.path)),
    };
    writeAtomically(options.outDir, [...artifacts, { kind: "summary", path: "summary.json", content: json(summary) }]);
    return { ok: true, summary };
}

// Secrets cannot be in the example stack file, and encrypted ones cannot be read without
// the Pulumi CLI. The plan stands in a placeholder for each and lists it as "set before
// pulumi up", so a missing secret never stops a plan and a placeholder is never mistaken
// for the real thing. Every secret this project takes today is a private key.
function withPlaceholderSecrets(file: StackFile, stack: string): { raw: RawConfig; pending: PendingSecret[] } {
    const values = { ...file.values };
    const secretKeys = new Set(file.secretKeys);
    const pending: PendingSecret[] = [];
    const stand = (key: string, reason: string) => {
        values[key] = placeholderKeypair(`config ${key}`).privateKeyPem;
        secretKeys.add(key);
        pending.push({ key, reason });
    };
    const isSecretSetting = (key: string) => secretSettings.has(key.slice(file.project.length + 1));

    for (const key of file.encryptedKeys) {
        if (isSecretSetting(key)) {
            stand(key, `encrypted in Pulumi.${stack}.yaml; the offline plan cannot decrypt it and used a placeholder`);
        } else if (key.startsWith(`${file.project}:`)) {
            values[key] = ""; // reported by validation below as a wrong value for this key
        }
    }
    const first = validateConfig({ project: file.project, values, secretKeys });
    if (!first.ok) {
        for (const p of first.problems) {
            if (p.code === "missing" && isSecretSetting(p.key) && values[p.key] === undefined) {
                stand(p.key, `not in Pulumi.${stack}.yaml (secrets never are); set it with \`pulumi config set --secret ${p.name} < FILE\``);
            }
        }
    }
    return { raw: { project: file.project, values, secretKeys }, pending };
}

function shownConfig(values: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, secretSettings.has(k) && v !== "" ? SECRET : v]));
}

async function showOutputs(program: Record<string, unknown>): Promise<Record<string, Json>> {
    const shown: Record<string, Json> = {};
    for (const name of Object.keys(program).sort()) {
        const output: pulumi.Output<Json> = pulumi.output(program[name] as pulumi.Input<Json>);
        const secret = await pulumi.isSecret(output);
        const value = await new Promise<Json>((resolve) => output.apply(resolve));
        shown[name] = secret ? SECRET : value;
    }
    return shown;
}

function summarise(recorded: RecordedResource[]): ResourceSummary[] {
    const nameOf = new Map(recorded.map((r) => [r.urn, r.name]));
    const names = recorded.map((r) => r.name);
    const duplicate = names.find((n, i) => names.indexOf(n) !== i);
    if (duplicate) throw new Error(`Two resources are both named "${duplicate}"; prefix child names with their component's name`);
    const ref = (urn: string) => (urn ? nameOf.get(urn) ?? urn : null);
    return recorded
        .map((r) => {
            const shown = showValue(r.inputs);
            return {
                type: r.type,
                name: r.name,
                parent: ref(r.parent),
                dependsOn: [...new Set(r.dependencies.map((d) => ref(d) as string))].sort(),
                provider: r.provider ? ref(r.provider.split("::").slice(0, 4).join("::")) : null,
                secretInputs: shown.secretPaths.sort(),
                secretOutputs: [...r.additionalSecretOutputs].sort(),
                inputsSha256: hashValue(r.inputs),
            };
        })
        .sort((a, b) => a.name.localeCompare(b.name));
}

function json(value: unknown): string {
    return `${JSON.stringify(value, null, 2)}\n`;
}

function writeAtomically(outDir: string, files: Artifact[]): void {
    const target = path.resolve(outDir);
    const staging = `${target}.partial-${process.pid}`;
    fs.rmSync(staging, { recursive: true, force: true });
    for (const file of files) {
        const destination = path.join(staging, file.path);
        if (!destination.startsWith(staging + path.sep)) throw new Error(`artifact path escapes the plan directory: ${file.path}`);
        fs.mkdirSync(path.dirname(destination), { recursive: true });
        fs.writeFileSync(destination, file.content);
    }
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(staging, target);
}
