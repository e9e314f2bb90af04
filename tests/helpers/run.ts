import { spawnSync } from "node:child_process";
import * as path from "node:path";

export interface Run {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
}

const tsx = path.resolve(__dirname, "..", "..", "node_modules", ".bin", "tsx");

/** Runs a TypeScript entry point with tsx in `cwd`, bounded by a timeout. */
export function runTs(script: string, args: string[], cwd: string, timeoutMs = 120_000): Run {
    const result = spawnSync(tsx, [script, ...args], { cwd, encoding: "utf8", timeout: timeoutMs });
    if (result.error) throw result.error;
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
