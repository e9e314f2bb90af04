// Reads a stack's settings the way the Pulumi CLI hands them to the program: every value
// a string (JSON for lists, maps, numbers and booleans), plus which keys are secrets.
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";

export interface StackFile {
    readonly project: string;
    readonly values: Record<string, string>;
    readonly secretKeys: Set<string>;
    /** Keys stored encrypted (`secure:`), which the plan cannot decrypt without Pulumi. */
    readonly encryptedKeys: string[];
}

export class StackFileError extends Error {}

/** Reads Pulumi.yaml and Pulumi.<stack>.yaml from the project directory. */
export function readStackFile(projectDir: string, stack: string): StackFile {
    const project = readYaml(path.join(projectDir, "Pulumi.yaml"))?.name;
    if (typeof project !== "string") throw new StackFileError("Pulumi.yaml has no project name");
    const file = path.join(projectDir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) {
        throw new StackFileError(`There is no Pulumi.${stack}.yaml; copy Pulumi.home.yaml to Pulumi.${stack}.yaml and edit it, or pass --stack home`);
    }
    const config = readYaml(file)?.config ?? {};
    if (typeof config !== "object" || Array.isArray(config)) throw new StackFileError(`Pulumi.${stack}.yaml: "config" must be a map of settings`);

    const values: Record<string, string> = {};
    const secretKeys = new Set<string>();
    const encryptedKeys: string[] = [];
    for (const [rawKey, value] of Object.entries(config as Record<string, unknown>)) {
        // A key without a namespace belongs to the project, as in the CLI.
        const key = rawKey.includes(":") ? rawKey : `${project}:${rawKey}`;
        if (containsSecure(value)) {
            encryptedKeys.push(key);
            secretKeys.add(key);
            continue;
        }
        values[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return { project, values, secretKeys, encryptedKeys };
}

function readYaml(file: string): Record<string, unknown> | undefined {
    try {
        return YAML.parse(fs.readFileSync(file, "utf8")) ?? undefined;
    } catch (err) {
        throw new StackFileError(`${path.basename(file)} is not valid YAML: ${(err as Error).message}`);
    }
}

function containsSecure(value: unknown): boolean {
    if (Array.isArray(value)) return value.some(containsSecure);
    if (value === null || typeof value !== "object") return false;
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "secure") return true;
    return Object.values(value).some(containsSecure);
}
