// How a VPS step travels: lib.sh, the step's script and one closing line that calls `main`
// with the step's arguments, all on stdin to `bash -s -- apply|remove`. Parameters and file
// contents therefore never appear on a command line (nor in `ps` on the VPS), and a
// truncated transfer runs nothing. Pure: no Pulumi.
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "shell-quote";
import { shellQuote } from "../shell";

export type StepName = "tunnel-endpoint" | "nginx" | "coturn" | "firewall" | "tls-key" | "backup-store";

export interface StepCall {
    /** Plain parameters, in order, after the action. */
    readonly params?: readonly string[];
    /** Files the step installs: target path on the VPS → content. */
    readonly files?: Readonly<Record<string, string>>;
}

const scriptsDir = path.join(__dirname, "scripts");

export function stepScriptPath(step: StepName | "lib"): string {
    return path.join(scriptsDir, `${step}.sh`);
}

const scripts = new Map<string, string>();

/** A script's text, read from disk once per process. */
function script(name: StepName | "lib"): string {
    let text = scripts.get(name);
    if (text === undefined) {
        text = fs.readFileSync(stepScriptPath(name), "utf8");
        scripts.set(name, text);
    }
    return text;
}

/** The text sent on stdin: lib.sh, the step, then `main "$@" <arguments>`. */
export function renderStepStdin(step: StepName, call: StepCall): string {
    return `${script("lib")}\n# ---- ${step}.sh ----\n${script(step)}\n${closingLine(call)}`;
}

/** The last line of a step's stdin, which calls main with the action and the arguments. */
export function closingLine(call: StepCall): string {
    const args = [
        ...(call.params ?? []),
        ...Object.entries(call.files ?? {}).flatMap(([target, content]) => ["--file", target, content]),
    ];
    return `main "$@" ${args.map(shellQuote).join(" ")}\n`;
}

/**
 * The command line of an action; as root directly, otherwise through passwordless sudo.
 * `remove` gets the same stdin, so its main sees the command line's words first, then the
 * apply arguments, which it ignores. `check` reads the apply arguments and changes nothing:
 * it prints one "drift: ..." line per difference between the VPS and them.
 */
export function stepCommand(action: "apply" | "remove" | "check", user: string): string {
    return `${user === "root" ? "" : "sudo -n "}bash -s -- ${action}`;
}

/** The files a step's stdin installs (for the plan), read back from its closing line. */
export function stepFiles(stdin: string): Record<string, string> {
    const marker = '\nmain "$@" ';
    const at = stdin.lastIndexOf(marker);
    if (at < 0) return {};
    const words = parse(stdin.slice(at + marker.length)).map(String);
    const files: Record<string, string> = {};
    for (let i = 0; i < words.length; i++) {
        if (words[i] === "--file" && i + 2 < words.length) {
            files[words[i + 1]] = words[i + 2];
            i += 2;
        }
    }
    return files;
}


