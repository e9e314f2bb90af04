// Every shell script of the project parses and is shellcheck-clean.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { renderStepStdin, StepName } from "../components/vps/steps";
import { repoRoot } from "./helpers/stack";
import { requireTool } from "./helpers/tools";

const ignored = new Set(["node_modules", ".git", "out", ".tools"]);
const stepsDir = path.join(repoRoot, "components", "vps", "scripts");

function shellScripts(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        if (ignored.has(e.name)) return [];
        const full = path.join(dir, e.name);
        if (e.isDirectory()) return full === stepsDir ? [] : shellScripts(full);
        return e.name.endsWith(".sh") || full === path.join(repoRoot, ".ci", "run") ? [full] : [];
    });
}

describe("shell scripts", () => {
    const scripts = shellScripts(repoRoot);

    it("include .ci/run and the tool installer", () => {
        const names = scripts.map((s) => path.relative(repoRoot, s));
        assert.ok(names.includes(".ci/run") && names.includes("scripts/install-test-tools.sh"), names.join(", "));
    });

    // VPS steps travel as lib.sh + the step + the call of main: check them as sent.
    const steps = fs.readdirSync(stepsDir).filter((f) => f.endsWith(".sh") && f !== "lib.sh").map((f) => f.slice(0, -3) as StepName);
    it("include every VPS step", () => {
        assert.deepEqual(steps.sort(), ["backup-store", "coturn", "firewall", "nginx", "tls-key", "tunnel-endpoint"]);
    });
    for (const step of steps) {
        it(`the ${step} step, as sent to the VPS, parses and passes shellcheck`, () => {
            const stdin = renderStepStdin(step, { params: ["a b", "it's"], files: { "/etc/x.conf": "line one\nline 'two'\n" } });
            assert.match(stdin, /^#!\/usr\/bin\/env bash\n[\s\S]*set -euo pipefail/);
            const parse = spawnSync("bash", ["-n"], { input: stdin, encoding: "utf8" });
            assert.equal(parse.status, 0, parse.stderr);
            const check = spawnSync(requireTool("shellcheck"), ["--severity=style", "--shell=bash", "-"], { input: stdin, encoding: "utf8" });
            assert.equal(check.status, 0, check.stdout + check.stderr);
        });
    }

    for (const script of scripts) {
        const name = path.relative(repoRoot, script);
        it(`${name} parses and passes shellcheck`, () => {
            const text = fs.readFileSync(script, "utf8");
            // The backup jobs' scripts are POSIX sh (Alpine has no bash); they stop on errors too.
            const posix = text.startsWith("#!/bin/sh\n");
            const parse = spawnSync(posix ? "sh" : "bash", ["-n", script], { encoding: "utf8" });
            assert.equal(parse.status, 0, parse.stderr);
            const check = spawnSync(requireTool("shellcheck"), ["--severity=style", "--external-sources", "--source-path=SCRIPTDIR", script], { encoding: "utf8" });
            assert.equal(check.status, 0, check.stdout + check.stderr);
            if (posix) assert.match(text, /\nset -eu\n|\n\. "\$\(dirname "\$0"\)\/lib\.sh"\n/);
            else assert.match(text, /^#!\/usr\/bin\/env bash\n[\s\S]*set -euo pipefail/);
        });
    }
});
