import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ensureUserCommand, HeadscaleCli } from "./cli";
import { parseUsers } from "./headscaleOutput";
import { PreauthKey } from "./preauthKey";

export interface UserKeySpec {
    readonly name: string;
    readonly user?: string;
    readonly tags?: readonly string[];
    readonly reusable: boolean;
    readonly ephemeral: boolean;
    readonly lifetimeDays: number;
}

export interface UserKeysArgs {
    readonly cli: HeadscaleCli;
    readonly keys: readonly UserKeySpec[];
    readonly loginServer: string;
    /** Window start per key name (see config/clock.ts). */
    readonly rotationWindow: (spec: UserKeySpec) => string;
}

export interface IssuedKey {
    readonly key: pulumi.Output<string>;
    readonly expiration: pulumi.Output<string>;
    /** The exact command for a new device (secret: it holds the key). */
    readonly tailscaleUp: pulumi.Output<string>;
}

/**
 * Preauth keys from config, for people's devices (a user, created if missing) or for tagged
 * machines such as CI runners. Users are never deleted: that would take their devices along.
 */
export class UserKeys extends pulumi.ComponentResource {
    public readonly issued: Record<string, IssuedKey> = {};

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
                rotationWindow: args.rotationWindow(spec),
            }, { parent: this, dependsOn: opts?.dependsOn });
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
