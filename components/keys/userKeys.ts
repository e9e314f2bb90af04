import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { rotationWindow } from "../../config/clock";
import { ensureUserCommand, HeadscaleCli } from "./cli";
import { GithubSecret } from "./githubSecret";
import { parseUsers } from "./headscaleOutput";
import { PreauthKey } from "./preauthKey";

export interface UserKeySpec {
    readonly name: string;
    readonly user?: string;
    readonly tags?: readonly string[];
    readonly reusable: boolean;
    readonly ephemeral: boolean;
    readonly lifetimeDays: number;
    /** Each new key is written into this Actions secret (for the scheduled workflow's runner). */
    readonly githubSecret?: GithubSecret;
}

export interface UserKeysArgs {
    readonly cli: HeadscaleCli;
    readonly keys: readonly UserKeySpec[];
    readonly loginServer: string;
    /** Today (config/clock.ts) and the router key's rotation period. */
    readonly date: string;
    readonly rotationDays: number;
    /** What a key's GitHub secret is written after: the rest of the rotation. */
    readonly storeAfter?: pulumi.Input<pulumi.Resource>[];
}

export interface IssuedKey {
    readonly key: pulumi.Output<string>;
    readonly expiration: pulumi.Output<string>;
    /** The exact command for a new device (secret: it holds the key). */
    readonly tailscaleUp: pulumi.Output<string>;
}

/** Where a key is kept for the workflows, and which key is there: nothing secret. */
export interface StoredKey {
    readonly repository: string;
    readonly secret: string;
    readonly keyId: pulumi.Output<string>;
    readonly expires: pulumi.Output<string>;
}

/**
 * The first day of a user key's rotation window: keys are renewed each rotation period, or
 * sooner if they live shorter than that (one day before they expire).
 */
export function userKeyWindow(date: string, rotationDays: number, spec: UserKeySpec): string {
    return rotationWindow(date, Math.min(rotationDays, Math.max(1, spec.lifetimeDays - 1))).start;
}

/**
 * Preauth keys from config, for people's devices (a user, created if missing) or for tagged
 * machines such as CI runners. Users are never deleted: that would take their devices along.
 */
export class UserKeys extends pulumi.ComponentResource {
    public readonly issued: Record<string, IssuedKey> = {};
    /** Per key with a githubSecret: the key that secret holds (resolved only once it is stored). */
    public readonly stored: Record<string, StoredKey> = {};

    constructor(name: string, args: UserKeysArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:UserKeys", name, {}, opts);
        const users = [...new Set(args.keys.flatMap((k) => (k.user ? [k.user] : [])))].sort();
        const userIds: Record<string, pulumi.Output<string>> = {};
        for (const user of users) {
            // `users create` fails when the user exists; the list that follows tells either way.
            const ensure = new command.local.Command(`${name}-user-${user}`, {
                create: ensureUserCommand(args.cli, user),
                logging: "stderr",
            }, { parent: this, dependsOn: opts?.dependsOn });
            userIds[user] = ensure.stdout.apply((out) => {
                const found = parseUsers(out).find((u) => u.name === user);
                if (!found) throw new Error(`headscale has no user "${user}" after creating it; see the command's output above`);
                return found.id;
            });
        }
        for (const spec of args.keys) {
            const key = new PreauthKey(`${name}-${spec.name}`, {
                cli: args.cli,
                ...(spec.user ? { userId: userIds[spec.user] } : { tags: spec.tags ?? [] }),
                reusable: spec.reusable,
                ephemeral: spec.ephemeral,
                lifetimeDays: spec.lifetimeDays,
                rotationWindow: userKeyWindow(args.date, args.rotationDays, spec),
                ...(spec.githubSecret ? { store: { secret: spec.githubSecret, after: args.storeAfter ?? [] } } : {}),
            }, { parent: this, dependsOn: opts?.dependsOn });
            if (spec.githubSecret && key.stored) {
                this.stored[spec.name] = { repository: spec.githubSecret.repository, secret: spec.githubSecret.name, keyId: key.stored.keyId, expires: key.stored.expiration };
            }
            this.issued[spec.name] = {
                key: key.key,
                expiration: key.expiration,
                // --accept-routes: Linux clients ignore subnet routes without it (others accept them).
                tailscaleUp: pulumi.secret(pulumi.interpolate`tailscale up --login-server=${args.loginServer} --authkey=${key.key} --accept-routes`),
            };
        }
        this.registerOutputs({});
    }
}
