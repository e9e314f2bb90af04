// The stack as the harness configures and reads it, with the real `pulumi` CLI: config, the
// state (`pulumi stack export`), outputs, and what an update changed.
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { repoRoot } from "../../helpers/stack";
import { E2e, stack } from "../context";
import { vpsAddress } from "../network";
import { mustPulumi } from "../pulumiCli";

/** Writes a stack's plain config into its stack file and sets the secrets with `pulumi config set --secret`. */
export async function configure(e2e: E2e, stackName: string, plain: Record<string, unknown>, secrets: Record<string, string>): Promise<void> {
    const file = e2e.project.stackFile(stackName);
    const doc = (fs.existsSync(file) ? YAML.parse(fs.readFileSync(file, "utf8")) : null) ?? {};
    doc.config = Object.fromEntries(Object.entries(plain).map(([k, v]) => [`overlay:${k}`, v]));
    fs.writeFileSync(file, YAML.stringify(doc));
    for (const [key, value] of Object.entries(secrets)) {
        await mustPulumi(e2e.project, ["config", "set", "--stack", stackName, "--secret", key], { input: value });
    }
}

export async function setConfig(e2e: E2e, key: string, value: string): Promise<void> {
    await mustPulumi(e2e.project, ["config", "set", "--stack", stack, key, value]);
}

/** The example stack's config for this box: the VM as the VPS, provided TLS, the test cluster. */
export function stackConfig(e2e: E2e): Record<string, unknown> {
    const example = YAML.parse(fs.readFileSync(path.join(repoRoot, "Pulumi.home.yaml"), "utf8")).config as Record<string, unknown>;
    const config = Object.fromEntries(Object.entries(example).map(([k, v]) => [k.replace(/^overlay:/, ""), v]));
    delete config.acmeEmail;
    return {
        ...config,
        vpsIpv4: vpsAddress,
        vpsIpv6: "",
        vpsHostKey: e2e.image.hostKey,
        tlsMode: "provided",
        tlsCertificate: e2e.tls.certificate,
        kubeconfig: e2e.cluster.kubeconfig,
        kubeContext: e2e.cluster.context,
        userKeys: [{ name: "phone", user: "alice", reusable: false, lifetimeDays: 1 }],
        // The tests start every backup themselves: the nightly one goes 12 hours from now, so
        // that it never fires during a run (the default, 03:30 UTC, once did).
        backupSchedule: `0 ${(new Date().getUTCHours() + 12) % 24} * * *`,
    };
}

/** `pulumi stack export --show-secrets`: the deployment's resources, secrets in plain. */
export async function stateResources(e2e: E2e): Promise<any[]> {
    const r = await mustPulumi(e2e.project, ["stack", "export", "--stack", stack, "--show-secrets"]);
    return plainState(JSON.parse(r.stdout).deployment.resources ?? []);
}

/** The export shows a secret as {<signature>: ..., plaintext: "<JSON>"}: the value itself instead. */
function plainState(value: any): any {
    if (Array.isArray(value)) return value.map(plainState);
    if (value && typeof value === "object") {
        if (secretSignature in value && typeof value.plaintext === "string") return plainState(JSON.parse(value.plaintext));
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainState(v)]));
    }
    return value;
}
const secretSignature = "4dabf18193072939515e22adb298388d";

export async function readOutputs(e2e: E2e): Promise<Record<string, any>> {
    return JSON.parse((await mustPulumi(e2e.project, ["stack", "output", "--stack", stack, "--json", "--show-secrets"])).stdout);
}

/** The VPS half of the planned stack, as a user applies it with --target: the two SSH keypairs and the VPS edge with their children. */
export function vpsHalf(planned: readonly string[]): string[] {
    return planned.filter((u) => /::(vps|tunnel|backup-store)$|VpsEdge\$|TunnelKeypair\$/.test(u));
}

export function isSelfReference(urn: string): boolean {
    return urn.includes("::pulumi:pulumi:StackReference::");
}

/** What an update did to each resource, from Pulumi's progress lines: "+- command:local:Command router-key-mint replaced". */
export function changedResources(text: string): string[] {
    const done = /^(\+\+|\+-|--|\+|~|-) +(\S+) (\S+) (created|updated|replaced|deleted)( replacement| original)?\b/;
    const lines = text.split("\n").map((l) => l.trim().match(done)).filter((m): m is RegExpMatchArray => m !== null);
    return [...new Set(lines.map((m) => `${m[1]} ${m[2]} ${m[3]} ${m[4]}${m[5] ?? ""}`))];
}
