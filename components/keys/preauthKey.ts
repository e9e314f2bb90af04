import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { expireKeyCommand, HeadscaleCli, mintKeyCommand } from "./cli";
import { parsePreauthKey } from "./headscaleOutput";

export interface PreauthKeyArgs {
    readonly cli: HeadscaleCli;
    /** Tags the key gives its nodes, e.g. ["tag:router"]; or a user instead. */
    readonly tags?: readonly string[];
    /** Numeric headscale user id (0.29's `--user` takes the id, not the name). */
    readonly userId?: pulumi.Input<string>;
    readonly reusable: boolean;
    readonly ephemeral: boolean;
    readonly lifetimeDays: number;
    /** First day of the current rotation window: a new window mints a new key. */
    readonly rotationWindow: string;
}

/**
 * A headscale preauth key, minted with the headscale CLI in the running pod. The key is a
 * secret from headscale's stdout onwards: the command logs nothing and its output is secret.
 * A new rotation window mints a new key first; the old one is expired afterwards, when
 * Pulumi deletes what it replaced. `pulumi destroy` expires the key.
 */
export class PreauthKey extends pulumi.ComponentResource {
    /** The key (secret). */
    public readonly key: pulumi.Output<string>;
    public readonly keyId: pulumi.Output<string>;
    /** ISO 8601 expiry. */
    public readonly expiration: pulumi.Output<string>;

    constructor(name: string, args: PreauthKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:PreauthKey", name, {}, opts);
        const create = pulumi.output(args.userId).apply((userId) =>
            mintKeyCommand(args.cli, userId !== undefined ? { userId } : { tags: args.tags ?? [] }, args));
        const mint = new command.local.Command(`${name}-mint`, {
            create,
            triggers: [args.rotationWindow],
            logging: "none",
            // Never hand the key to a later command through its environment.
            addPreviousOutputInEnv: false,
        // Whatever this key waits for (headscale being ready), its command waits for.
        }, { parent: this, dependsOn: opts?.dependsOn, additionalSecretOutputs: ["stdout", "stderr"] });

        const parsed = mint.stdout.apply(parsePreauthKey);
        this.key = pulumi.secret(parsed.apply((k) => k.key));
        // The id and the expiry say nothing about the key; they are shown in plain.
        this.keyId = pulumi.unsecret(parsed.apply((k) => k.id));
        this.expiration = pulumi.unsecret(parsed.apply((k) => k.expiration));

        // This resource exists for its delete: replaced along with the key, it expires the
        // old key once the new one is in use; on destroy it expires the last one.
        new command.local.Command(`${name}-expiry`, {
            create: "true",
            delete: this.keyId.apply((id) => expireKeyCommand(args.cli, id)),
            triggers: [this.keyId],
        }, { parent: this });

        this.registerOutputs({ key: this.key, keyId: this.keyId, expiration: this.expiration });
    }
}
