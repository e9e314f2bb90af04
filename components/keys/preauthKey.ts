import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { expireKeyCommand, HeadscaleCli, mintKeyCommand } from "./cli";
import { GithubSecret, storeSecretCommand } from "./githubSecret";
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
    /**
     * Write each new key into this GitHub Actions secret, once `after` is done (the rest of the
     * rotation); the key it replaces is expired only once it is stored.
     */
    readonly store?: { readonly secret: GithubSecret; readonly after: pulumi.Input<pulumi.Resource>[] };
}

/**
 * A headscale preauth key, minted with the headscale CLI in the running pod. The key is a
 * secret from headscale's stdout onwards: the command logs nothing and its output is secret.
 * A new rotation window mints a new key first; the old one is expired afterwards, when
 * Pulumi deletes what it replaced. A key kept in a GitHub secret is written there first: if
 * that fails, the `pulumi up` fails, the old key stays valid (the secret still holds it), and
 * the next `pulumi up` tries the store again. `pulumi destroy` expires the key.
 */
export class PreauthKey extends pulumi.ComponentResource {
    /** The key (secret). */
    public readonly key: pulumi.Output<string>;
    public readonly keyId: pulumi.Output<string>;
    /** ISO 8601 expiry. */
    public readonly expiration: pulumi.Output<string>;
    /**
     * With `store`: the id and expiry of this key once it is stored. They never resolve in a
     * run whose store failed, so such a run leaves the stack outputs that name them as the
     * last completed run wrote them: the key the secret still holds.
     */
    public readonly stored?: { readonly keyId: pulumi.Output<string>; readonly expiration: pulumi.Output<string> };

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

        // The key on stdin, the token from the environment: neither is in the command line,
        // and the state keeps the key encrypted, as a secret input.
        const stored = args.store && new command.local.Command(`${name}-store`, {
            create: storeSecretCommand(args.store.secret),
            stdin: this.key,
            triggers: [this.keyId],
            logging: "stderr",
            addPreviousOutputInEnv: false,
        }, { parent: this, dependsOn: [mint, ...args.store.after] });

        if (stored) {
            this.stored = {
                keyId: pulumi.all([stored.stdout, this.keyId]).apply(([, id]) => id),
                expiration: pulumi.all([stored.stdout, this.expiration]).apply(([, expiration]) => expiration),
            };
        }

        // This resource exists for its delete: replaced along with the key, it expires the
        // old key once the new one is in use (and stored); on destroy it expires the last one.
        new command.local.Command(`${name}-expiry`, {
            create: "true",
            delete: this.keyId.apply((id) => expireKeyCommand(args.cli, id)),
            triggers: [this.keyId],
        }, { parent: this, dependsOn: stored ? [stored] : [] });

        this.registerOutputs({ key: this.key, keyId: this.keyId, expiration: this.expiration });
    }
}
