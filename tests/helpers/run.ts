import { spawnSync } from "node:child_process";

export interface Run {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
}

const tsxCli = require.resolve("tsx/cli");

/** Runs a TypeScript entry point with tsx, on the Node.js that runs the tests, in `cwd`, bounded by a timeout. */
export function runTs(script: string, args: string[], cwd: string, timeoutMs = 120_000): Run {
    const result = spawnSync(process.execPath, [tsxCli, script, ...args], { cwd, encoding: "utf8", timeout: timeoutMs });
    if (result.error) throw result.error;
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
