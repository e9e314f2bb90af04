// Real programs the tests check generated files with. They are installed by
// scripts/install-test-tools.sh, which `npm test` runs first.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { repoRoot } from "./stack";

/** Where scripts/install-test-tools.sh puts what it builds: $TOOLS_DIR, or .tools in the repository. */
export const toolsDir = process.env.TOOLS_DIR ?? path.join(repoRoot, ".tools");
const toolsBin = path.join(toolsDir, "bin");

/** The path of a tool, or an error that says how to install it. Never a silent skip. */
export function requireTool(name: string): string {
    const local = path.join(toolsBin, name);
    if (fs.existsSync(local)) return local;
    try {
        return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
    } catch {
        throw new Error(`${name} is not installed: run \`bash scripts/install-test-tools.sh\` (npm test runs it first)`);
    }
}

/**
 * A directory to put first on PATH: the named tools linked in, and the kubectl stand-in as
 * `kubectl` (it runs what follows `kubectl exec ... --` here, where headscale is the test's).
 */
export function toolBin(dir: string, tools: readonly string[]): string {
    fs.mkdirSync(dir, { recursive: true });
    for (const tool of tools) fs.symlinkSync(requireTool(tool), path.join(dir, tool));
    const kubectl = path.join(dir, "kubectl");
    fs.copyFileSync(path.join(__dirname, "kubectl-stand-in.sh"), kubectl);
    fs.chmodSync(kubectl, 0o755);
    return dir;
}

/** Puts the gh stand-in (gh-stand-in.sh: GitHub's API boundary) into `dir` as `gh`. */
export function installGhStandIn(dir: string): void {
    fs.copyFileSync(path.join(__dirname, "gh-stand-in.sh"), path.join(dir, "gh"));
    fs.chmodSync(path.join(dir, "gh"), 0o755);
}
