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
    /** The same key as OpenSSH writes it, "-----BEGIN OPENSSH PRIVATE KEY-----". */
    readonly privateKeyOpenssh: string;
    /** "ssh-ed25519 AAAA..." */
    readonly publicKeyOpenssh: string;
}

export function placeholderKeypair(label: string): PlaceholderKeypair {
    return ed25519Keypair(createHash("sha256").update(`overlay plan placeholder: ${label}`).digest());
}

/** The ED25519 keypair of a 32-byte seed, in the formats the tls provider gives. */
export function ed25519Keypair(seed: Buffer): PlaceholderKeypair {
    const privateKey = createPrivateKey({ key: Buffer.concat([pkcs8Ed25519Header, seed]), format: "der", type: "pkcs8" });
    const raw = Buffer.from(createPublicKey(privateKey).export({ format: "jwk" }).x as string, "base64url");
    const publicBlob = Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(raw)]);
    return {
        privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
        privateKeyOpenssh: opensshPrivateKey(seed, raw, publicBlob),
        publicKeyOpenssh: `ssh-ed25519 ${publicBlob.toString("base64")}`,
    };
}

/** OpenSSH's own format (PROTOCOL.key), unencrypted, with a check value derived from the seed. */
function opensshPrivateKey(seed: Buffer, publicKey: Buffer, publicBlob: Buffer): string {
    const check = seed.subarray(0, 4);
    let secret = Buffer.concat([
        check, check,
        sshString(Buffer.from("ssh-ed25519")), sshString(publicKey), sshString(Buffer.concat([seed, publicKey])),
        sshString(Buffer.alloc(0)),
    ]);
    const padding = (8 - (secret.length % 8)) % 8;
    secret = Buffer.concat([secret, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);
    const count = Buffer.alloc(4);
    count.writeUInt32BE(1);
    const body = Buffer.concat([
        Buffer.from("openssh-key-v1\0", "latin1"),
        sshString(Buffer.from("none")), sshString(Buffer.from("none")), sshString(Buffer.alloc(0)),
        count, sshString(publicBlob), sshString(secret),
    ]).toString("base64");
    return `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.match(/.{1,70}/g)!.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function sshString(bytes: Buffer): Buffer {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
}
