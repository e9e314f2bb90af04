// npm run bench: how much the whole program costs to evaluate under the mock runtime,
// against a bare one-resource program in the same runtime. Both run alternately in fresh
// processes (the runtime is per process), on the Node.js that runs this script, in one run, and
// the ratio of medians is printed.
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { performance } from "node:perf_hooks";

const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
const tsxCli = require.resolve("tsx/cli");

interface Sample {
    /** From the program's first line to its last registration. */
    readonly evaluateMs: number;
    /** The whole process, start-up included. */
    readonly processMs: number;
    readonly resources: number;
}

function sample(which: "full" | "bare"): Sample {
    const start = performance.now();
    const run = spawnSync(process.execPath, [tsxCli, path.join(__dirname, "evaluate.ts"), which], { encoding: "utf8", timeout: 120_000 });
    const processMs = performance.now() - start;
    if (run.status !== 0) throw new Error(`evaluate ${which} failed:\n${run.stderr}`);
    const result = JSON.parse(run.stdout.trim().split("\n").pop() as string);
    return { evaluateMs: result.ms, processMs, resources: result.resources };
}

function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function main(): void {
    sample("full"); // warm tsx's compile cache and the file system cache
    sample("bare");
    const full: Sample[] = [];
    const bare: Sample[] = [];
    for (let i = 0; i < rounds; i++) {
        full.push(sample("full"));
        bare.push(sample("bare"));
    }
    const row = (name: string, s: Sample[]) =>
        `${name.padEnd(28)} ${median(s.map((x) => x.evaluateMs)).toFixed(0).padStart(8)} ms ${median(s.map((x) => x.processMs)).toFixed(0).padStart(10)} ms ${String(s[0].resources).padStart(10)}`;
    console.log(`Node.js ${process.version}; median of ${rounds} runs each, alternating, fresh process per run`);
    console.log(`${"".padEnd(28)} ${"evaluate".padStart(11)} ${"whole process".padStart(13)} ${"resources".padStart(10)}`);
    console.log(row("whole program (home stack)", full));
    console.log(row("bare one-resource program", bare));
    const ratio = (f: (s: Sample) => number) => (median(full.map(f)) / median(bare.map(f))).toFixed(2);
    console.log(`ratio full/bare: evaluate ${ratio((s) => s.evaluateMs)}x, whole process ${ratio((s) => s.processMs)}x (target: 1.5x or less)`);
}

main();
