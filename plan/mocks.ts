// What the real providers would compute for each resource type, as far as the plan needs
// it. Values are deterministic so that a plan is reproducible byte for byte.
import { placeholderKeypair } from "./placeholderKeys";

export function computedOutputs(type: string, name: string, _inputs: Record<string, unknown>): Record<string, unknown> {
    switch (type) {
        case "tls:index/privateKey:PrivateKey": {
            const key = placeholderKeypair(`tls.PrivateKey ${name}`);
            return {
                publicKeyOpenssh: `${key.publicKeyOpenssh}\n`,
                privateKeyOpenssh: key.privateKeyPem,
                privateKeyPem: key.privateKeyPem,
            };
        }
        case "command:remote:Command":
        case "command:local:Command":
            // What a command prints is known only when it runs.
            return { stdout: "(printed by the command at pulumi up)", stderr: "" };
        default:
            return {};
    }
}
