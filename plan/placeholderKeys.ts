// Deterministic stand-in keys for the offline plan. A real `pulumi up` generates or reads
// real keys; the plan needs values of the right shape that stay the same on every run, so
// that two plans of the same config are byte-identical. They are real ED25519 keys derived
// from a public label, so they protect nothing and are never used outside the plan.
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";

// DER header of a PKCS#8 ED25519 private key; the 32-byte seed follows it.
const pkcs8Ed25519Header = Buffer.from("302e020100300506032b657004220420", "hex");

export interface PlaceholderKeypair {
    /** PKCS#8 PEM, "-----BEGIN PRIVATE KEY-----". */
    readonly privateKeyPem: string;
    /** "ssh-ed25519 AAAA..." */
    readonly publicKeyOpenssh: string;
}

export function placeholderKeypair(label: string): PlaceholderKeypair {
    const seed = createHash("sha256").update(`overlay plan placeholder: ${label}`).digest();
    const privateKey = createPrivateKey({ key: Buffer.concat([pkcs8Ed25519Header, seed]), format: "der", type: "pkcs8" });
    const raw = Buffer.from(createPublicKey(privateKey).export({ format: "jwk" }).x as string, "base64url");
    return {
        privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
        publicKeyOpenssh: `ssh-ed25519 ${Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(raw)]).toString("base64")}`,
    };
}

function sshString(bytes: Buffer): Buffer {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
}
