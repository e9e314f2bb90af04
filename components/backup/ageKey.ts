// An age X25519 identity from 32 secret bytes, in age's own text forms. Pure: no Pulumi.
// The backups are encrypted to the recipient at home; only the identity decrypts them.
import { createPrivateKey, createPublicKey } from "node:crypto";
import { bech32 } from "@scure/base";

// PKCS#8 wrapping of a raw X25519 private key (RFC 8410): this prefix, then the 32 bytes.
const x25519Pkcs8Prefix = Buffer.from("302e020100300506032b656e04220420", "hex");

export interface AgeKey {
    /** "AGE-SECRET-KEY-1...", as age-keygen writes it. Secret. */
    readonly identity: string;
    /** "age1...": what the backup job encrypts to. */
    readonly recipient: string;
}

/** The age identity and recipient for a 32-byte X25519 private key. */
export function ageKeyFromBytes(secret: Uint8Array): AgeKey {
    if (secret.length !== 32) throw new Error(`an age identity needs 32 bytes, not ${secret.length}`);
    const privateKey = createPrivateKey({ key: Buffer.concat([x25519Pkcs8Prefix, secret]), format: "der", type: "pkcs8" });
    const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
    const publicKey = spki.subarray(spki.length - 32);
    return {
        identity: bech32.encode("age-secret-key-", bech32.toWords(secret), false).toUpperCase(),
        recipient: bech32.encode("age", bech32.toWords(publicKey), false),
    };
}

/** The key pair of an identity in age's text form ("AGE-SECRET-KEY-1..."), as age-keygen wrote it. */
export function ageKeyFromIdentity(identity: string): AgeKey {
    const { prefix, words } = bech32.decode(identity.trim().toLowerCase() as `${string}1${string}`);
    if (prefix !== "age-secret-key-") throw new Error("not an age identity: it must start with AGE-SECRET-KEY-1");
    return ageKeyFromBytes(bech32.fromWords(words));
}

/** Whether text is an age X25519 identity, exactly as age-keygen writes it (upper case, valid checksum). */
export function isAgeIdentity(text: string): boolean {
    try {
        return ageKeyFromIdentity(text).identity === text.trim();
    } catch {
        return false;
    }
}
