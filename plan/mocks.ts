// What the real providers, and headscale behind the local commands, would answer for each
// resource, as far as the plan needs it. Values are deterministic, so that a plan of the same
// config on the same date is reproducible byte for byte. Keys are placeholders, and secret.
import { createHash } from "node:crypto";
import { parse } from "shell-quote";
import { addDays, today } from "../config/clock";
import { placeholderKeypair } from "./placeholderKeys";

/** The outputs the stack's last update left, as the program's reference to itself reads them. */
let previousStackOutputs: Record<string, unknown> = {};
export function setPreviousStackOutputs(outputs: Record<string, unknown>): void {
    previousStackOutputs = outputs;
}

export function computedOutputs(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
    switch (type) {
        case "pulumi:pulumi:StackReference":
            return { outputs: previousStackOutputs };
        case "tls:index/privateKey:PrivateKey": {
            const key = placeholderKeypair(`tls.PrivateKey ${name}`);
            return {
                publicKeyOpenssh: `${key.publicKeyOpenssh}\n`,
                privateKeyOpenssh: key.privateKeyOpenssh,
                privateKeyPem: key.privateKeyPem,
            };
        }
        case "random:index/randomBytes:RandomBytes": {
            // A placeholder, derived from the name: the same on every plan.
            const bytes = createHash("sha256").update(`random.RandomBytes ${name}`).digest().subarray(0, Number(inputs.length ?? 32));
            return { base64: bytes.toString("base64"), hex: bytes.toString("hex") };
        }
        case "command:local:Command":
            // A new window (a trigger) mints a new key with a new id, as headscale would.
            return { stdout: headscaleAnswer(`${name} ${JSON.stringify(inputs.triggers ?? [])}`, typeof inputs.create === "string" ? inputs.create : ""), stderr: "" };
        case "command:remote:Command":
            // What a command prints is known only when it runs.
            return { stdout: "(printed by the command at pulumi up)", stderr: "" };
        default:
            return {};
    }
}

/** headscale 0.29's JSON for the CLI calls the program makes through `kubectl exec`. */
function headscaleAnswer(name: string, create: string): string {
    const words = parse(create).map(String);
    const json = (value: unknown) => JSON.stringify(value, null, "\t");
    const at = (flag: string): string | undefined => (words.includes(flag) ? words[words.indexOf(flag) + 1] : undefined);
    if (create.includes(" preauthkeys create ")) {
        const days = Number((at("--expiration") ?? "90d").replace(/d$/, ""));
        const expires = Date.parse(`${addDays(today(), days)}T00:00:00Z`) / 1000;
        return json({
            id: smallId(name),
            key: `hskey-auth-plan-placeholder-${smallId(name)}`,
            ...(words.includes("--reusable") ? { reusable: true } : {}),
            ...(words.includes("--ephemeral") ? { ephemeral: true } : {}),
            expiration: { seconds: expires, nanos: 0 },
            ...(words.includes("--tags") ? { acl_tags: (at("--tags") ?? "").split(",") } : {}),
        });
    }
    if (create.includes(" users list ")) {
        const user = at("create");
        return json([{ id: smallId(user ?? name), name: user }]);
    }
    if (create.startsWith("bash -s -- ")) {
        // wait-for-node.sh NODE_NAME ...: the router's node, registered.
        const node = words[3];
        return json([{ id: smallId(node), name: node, given_name: node }]);
    }
    return "";
}

function smallId(text: string): number {
    let h = 7;
    for (const c of text) h = (h * 31 + c.charCodeAt(0)) % 997;
    return h + 1;
}
