// The documents a user reads stay true: Pulumi.yaml's typed config, the README's config
// reference and first screen, the example stack, and CI running the README's test command.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { KeySpec, keyNames, keys } from "../config";
import { renderPulumiYaml, withImageTable, withReadmeTable } from "../scripts/configDocs";
import { repoRoot } from "./helpers/stack";

const read = (file: string) => fs.readFileSync(path.join(repoRoot, file), "utf8");
const readme = read("README.md");

describe("documentation", () => {
    it("Pulumi.yaml declares every key with a type and a description, generated from config/keys.ts", () => {
        assert.equal(read("Pulumi.yaml"), renderPulumiYaml(), "Pulumi.yaml is stale: run npm run docs:config");
        const project = YAML.parse(read("Pulumi.yaml"));
        assert.equal(project.runtime.name, "nodejs");
        assert.deepEqual(Object.keys(project.config), keyNames);
        for (const [name, decl] of Object.entries<Record<string, unknown>>(project.config)) {
            assert.ok(["string", "integer", "boolean", "array", "object"].includes(String(decl.type)), `${name}: type ${decl.type}`);
            assert.ok(typeof decl.description === "string" && decl.description.length > 10, `${name} has no description`);
            if (decl.type === "array") assert.ok(decl.items, `${name} is an array without items`);
            const spec: KeySpec = keys[name as keyof typeof keys];
            assert.deepEqual(decl.default, spec.default, `${name}: default differs from config/keys.ts`);
            // The CLI checks a default against the declared type; so do we.
            if (decl.default !== undefined) {
                const kind = Array.isArray(decl.default) ? "array" : typeof decl.default === "number" ? "integer" : typeof decl.default;
                assert.equal(kind, decl.type, `${name}: default ${JSON.stringify(decl.default)} is not a ${decl.type}`);
                assert.ok(spec.schema.safeParse(decl.default).success, `${name}: the default itself is invalid`);
            }
        }
    });

    it("the README's config reference matches Pulumi.yaml", () => {
        assert.equal(readme, withReadmeTable(readme), "README.md's config reference is stale: run npm run docs:config");
        for (const name of keyNames) assert.match(readme, new RegExp(`^\\| \`${name}\` \\|`, "m"));
    });

    it("the README's table of the end-to-end test's images matches their definitions", () => {
        assert.equal(readme, withImageTable(readme), "README.md's table of images is stale: run npm run docs:config");
    });

    it("shows the two newcomer commands on its first screen, and CI runs the same test command", () => {
        const firstScreen = readme.split("\n").slice(0, 40).join("\n");
        assert.match(firstScreen, /^npm ci && npm run plan\b/m);
        assert.match(firstScreen, /^npm ci && npm test\b/m);
        const ci = read(".ci/run");
        assert.match(ci, /^npm ci && npm test$/m, ".ci/run must run the README's test command verbatim");
    });

    it("has a Mermaid architecture diagram", () => {
        assert.match(readme, /```mermaid\nflowchart/);
    });

    it("Pulumi.home.yaml sets every required key, is commented, and holds no secret", () => {
        const text = read("Pulumi.home.yaml");
        const config = YAML.parse(text).config as Record<string, unknown>;
        for (const name of keyNames) {
            const spec: KeySpec = keys[name];
            if (spec.secret) assert.ok(!(`overlay:${name}` in config), `${name} is a secret and must not be in the example`);
            else if (spec.default === undefined) assert.ok(`overlay:${name}` in config, `the example lacks the required key ${name}`);
        }
        assert.ok(text.split("\n").filter((l) => l.trim().startsWith("#")).length >= 20, "the example explains itself in comments");
        assert.doesNotMatch(text, /-----BEGIN|^\s+secure:/m);
    });
});
