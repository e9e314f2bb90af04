// The real Pulumi CLI for the end-to-end test: a project directory of the test's own whose
// Pulumi.yaml is the repository's with `main` pointing back at the repository (so the program
// is the real one, and the stack files stay out of the tree), a file:// backend, and a
// PULUMI_HOME whose plugins are the ones scripts/install-pulumi.sh built. Nothing is
// downloaded: automatic plugin acquisition and the update check are off. Where no built
// engine exists (a machine with internet access and no ../shared), the installed `pulumi` is
// used with plugins acquired as usual.
import * as fs from "node:fs";
import * as path from "node:path";
import { Netns } from "../helpers/netns";
import { repoRoot } from "../helpers/stack";
import { toolsDir } from "../helpers/tools";
import { exec, Result } from "./exec";

export const passphrase = "overlay e2e passphrase";
const builtBin = path.join(toolsDir, "pulumi", "bin");
const builtPlugins = path.join(toolsDir, "pulumi", "home", "plugins");

export interface PulumiProject {
    /** The directory the CLI runs in: Pulumi.yaml and the stack files. */
    readonly dir: string;
    /** Runs `pulumi ARGS` there, in the namespace, with the test's environment. */
    run(args: readonly string[], options?: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number }): Promise<Result>;
    /** The stack file's path. */
    stackFile(stack: string): string;
    /** Sets a variable for every later run (a date that has moved on stays moved on). */
    setEnv(name: string, value: string): void;
    /** The environment each run gets (PATH, backend, passphrase, plugins), for running pulumi another way. */
    environment(): NodeJS.ProcessEnv;
}

export interface PulumiProjectOptions {
    readonly ns: Netns;
    readonly dir: string;
    /** First on PATH: the kubectl wrapper and the tools the program's commands call. */
    readonly pathPrefix: readonly string[];
    readonly env?: NodeJS.ProcessEnv;
    /** Another program's Pulumi.yaml, in `dir` with its code; default: this repository's, pointed at it. */
    readonly pulumiYaml?: string;
}

/** Whether the engine was built from source here (else the installed `pulumi` is used). */
export function builtEngine(): boolean {
    return fs.existsSync(path.join(builtBin, "pulumi")) && fs.existsSync(builtPlugins);
}

export function pulumiProject(options: PulumiProjectOptions): PulumiProject {
    const dir = options.dir;
    const home = path.join(dir, ".pulumi-home");
    const backend = path.join(dir, ".pulumi-state");
    fs.mkdirSync(home, { recursive: true });
    fs.mkdirSync(backend, { recursive: true });
    if (options.pulumiYaml) {
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), options.pulumiYaml);
    } else {
        const project = fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8");
        if (!/^runtime:$/m.test(project)) throw new Error("Pulumi.yaml has no top-level runtime: line to put main: before");
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), project.replace(/^runtime:$/m, `main: ${path.relative(dir, repoRoot)}\nruntime:`));
    }

    const built = builtEngine();
    if (built) fs.symlinkSync(builtPlugins, path.join(home, "plugins"));
    const env: NodeJS.ProcessEnv = {
        PATH: [...options.pathPrefix, path.join(repoRoot, "node_modules", ".bin"), ...(built ? [builtBin] : []), process.env.PATH].join(":"),
        PULUMI_BACKEND_URL: `file://${backend}`,
        PULUMI_CONFIG_PASSPHRASE: passphrase,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_SKIP_CONFIRMATIONS: "true",
        ...(built
            ? {
                PULUMI_HOME: home,
                PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
                // The plugins come from PULUMI_HOME, not from the bin directory on PATH.
                PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
            }
            : {}),
        ...options.env,
    };
    return {
        dir,
        stackFile: (stack) => path.join(dir, `Pulumi.${stack}.yaml`),
        setEnv: (name, value) => {
            env[name] = value;
        },
        environment: () => ({ ...env }),
        run: (args, runOptions = {}) => exec(options.ns, "pulumi", [...args, "--non-interactive", "--color=never"], {
            cwd: dir,
            env: { ...env, ...runOptions.env },
            input: runOptions.input,
            timeoutMs: runOptions.timeoutMs ?? 120_000,
        }),
    };
}

/** Like run, but a non-zero exit is an error that shows the output. */
export async function mustPulumi(project: PulumiProject, args: readonly string[], options?: Parameters<PulumiProject["run"]>[1]): Promise<Result> {
    const r = await project.run(args, options);
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.status}:\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`);
    return r;
}
