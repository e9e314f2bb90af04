// The files a real `pulumi up` would apply, read back from the registered resources'
// inputs: Kubernetes manifests, files inside ConfigMaps, files copied to the VPS and the
// commands run there or locally. Secrets are already "[secret]" in what these rules see.
import YAML from "yaml";
import { stepFiles } from "../components/vps/steps";
import { RecordedResource } from "./recorder";
import { Json, SECRET, showValue, unwrapSecrets } from "./values";

export interface Artifact {
    readonly kind: string;
    /** Relative to the plan's output directory. */
    readonly path: string;
    readonly content: string;
}

export function resourceArtifacts(resource: RecordedResource): Artifact[] {
    const inputs = showValue(resource.inputs).value as Record<string, Json>;
    const k8s = /^kubernetes:[^:]+:([A-Za-z]+)$/.exec(resource.type);
    if (k8s && !resource.type.endsWith("List")) return kubernetesArtifacts(resource, inputs, unwrapSecrets(resource.inputs) as Record<string, unknown>);
    switch (resource.type) {
        case "command:remote:Command":
            return [commandArtifact(resource, inputs), ...vpsFiles(inputs)];
        case "command:local:Command":
            return [commandArtifact(resource, inputs)];
        case "command:remote:CopyToRemote":
            return [copyArtifact(resource, inputs)];
        default:
            return [];
    }
}

function kubernetesArtifacts(resource: RecordedResource, inputs: Record<string, Json>, unwrapped: Record<string, unknown>): Artifact[] {
    const manifest = { ...inputs };
    const kind = String(manifest.kind ?? resource.type.split(":").pop());
    const metadata = (manifest.metadata ?? {}) as Record<string, Json>;
    const objectName = typeof metadata.name === "string" ? metadata.name : resource.name;
    if (kind === "Secret") {
        // A Secret's payload is never shown, whatever the program marked; its key names are.
        for (const field of ["data", "stringData"]) {
            const payload = unwrapped[field];
            if (payload && typeof payload === "object" && !Array.isArray(payload)) {
                manifest[field] = Object.fromEntries(Object.keys(payload).sort().map((k) => [k, SECRET]));
            }
        }
    }
    const base = `k8s/${kind.toLowerCase()}-${objectName}`;
    const artifacts: Artifact[] = [{ kind: "kubernetes-manifest", path: `${base}.yaml`, content: YAML.stringify(manifest, { lineWidth: 0 }) }];
    if (kind === "ConfigMap" && manifest.data && typeof manifest.data === "object") {
        for (const [file, content] of Object.entries(manifest.data as Record<string, Json>)) {
            artifacts.push({ kind: "configmap-file", path: `${base}/${file}`, content: String(content) });
        }
    }
    return artifacts;
}

function commandArtifact(resource: RecordedResource, inputs: Record<string, Json>): Artifact {
    const remote = resource.type.startsWith("command:remote:");
    // The SDK makes the whole connection secret; its address is not, and is worth showing.
    const connection = (unwrapSecrets(resource.inputs) as { connection?: Record<string, unknown> }).connection ?? {};
    const where = remote ? `on ${connection.user ?? "root"}@${connection.host}:${connection.port ?? 22} over SSH` : "on the machine running pulumi";
    const sections = [
        `# ${resource.type} "${resource.name}", run ${where}.`,
        `# "create" runs on the first pulumi up and whenever its inputs or triggers change${inputs.update ? ' ("update" on changes)' : ""}; "delete" runs on pulumi destroy.`,
    ];
    for (const phase of ["create", "update", "delete"]) {
        if (typeof inputs[phase] === "string") sections.push(`\n## ${phase}\n${inputs[phase]}`);
    }
    if (inputs.environment && typeof inputs.environment === "object") {
        sections.push(`\n## environment\n${YAML.stringify(inputs.environment, { lineWidth: 0 }).trimEnd()}`);
    }
    if (typeof inputs.stdin === "string") sections.push(`\n## stdin\n${inputs.stdin}`);
    return { kind: remote ? "remote-command" : "local-command", path: `commands/${resource.name}.txt`, content: `${sections.join("\n").trimEnd()}\n` };
}

// A VPS step carries the files it installs in its stdin (components/vps/steps.ts).
function vpsFiles(inputs: Record<string, Json>): Artifact[] {
    if (typeof inputs.stdin !== "string" || inputs.stdin === SECRET) return [];
    return Object.entries(stepFiles(inputs.stdin)).map(([target, content]) => ({
        kind: "vps-file",
        path: `vps/${target.replace(/^\/+/, "")}`,
        content,
    }));
}

function copyArtifact(resource: RecordedResource, inputs: Record<string, Json>): Artifact {
    const source = (inputs.source ?? {}) as Record<string, Json>;
    const remotePath = String(inputs.remotePath ?? resource.name).replace(/^\/+/, "");
    const content = typeof source.text === "string" ? source.text : `# file copied from ${String(source.path ?? "an asset")}\n`;
    return { kind: "vps-file", path: `vps/${remotePath}`, content };
}
