// Evaluates the real program (index.ts) under the mock runtime, recording every resource.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { RawConfig } from "../../config";
import { RecordedResource, startRecording } from "../../plan/recorder";
import { showValue } from "../../plan/values";
import { project, repoRoot } from "./stack";

const entry = path.join(repoRoot, "index.ts");
let recorded: RecordedResource[] | undefined;

export interface Evaluation {
    /** What the program threw, if it did. */
    readonly error?: Error;
    readonly exports: Record<string, unknown>;
    readonly resources: RecordedResource[];
    /** A resource's inputs, secrets shown as "[secret]". */
    inputs(name: string): Record<string, any>;
}

/**
 * Evaluates index.ts afresh with the given config. The first call installs the mocks;
 * resources from earlier calls are forgotten. What the program throws is in `error`.
 */
export async function evaluate(config: RawConfig): Promise<Evaluation> {
    recorded ??= await startRecording(project, "test");
    recorded.length = 0;
    pulumi.runtime.setAllConfig(config.values, [...config.secretKeys]);
    delete require.cache[require.resolve(entry)];
    let exports: Record<string, unknown> = {};
    let error: Error | undefined;
    try {
        exports = await (require(entry) as () => Promise<Record<string, unknown>>)();
    } catch (err) {
        error = err as Error;
    }
    // Let every registration reach the (mock) engine: they are queued as microtasks and
    // timers of zero delay, so one short timer is ample.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const resources = [...recorded];
    return {
        error,
        exports,
        resources,
        inputs(name) {
            const r = resources.find((x) => x.name === name);
            if (!r) throw new Error(`no resource named ${name}; have ${resources.map((x) => x.name).join(", ")}`);
            return showValue(r.inputs).value as Record<string, any>;
        },
    };
}

/** Resolves an Output (or plain value) the program exported. */
export function valueOf<T>(output: unknown): Promise<T> {
    return new Promise((resolve) => pulumi.output(output as pulumi.Input<T>).apply((v) => resolve(v as T)));
}
