// Entry point of the Pulumi program: validate the stack's config (and that its headscale
// version may follow the deployed one), build the home stack, export what a user needs.
import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig } from "./config";
import { checkHeadscaleUpgrade } from "./stacks/upgradeGuard";
import { createHomeStack } from "./stacks/home";

export = async () => {
    const config = loadStackConfig();
    await checkHeadscaleUpgrade(config.headscaleImage);
    const home = createHomeStack(config);
    return {
        loginServer: home.loginServer,
        routerNodeName: home.routerNodeName,
        vpsHostKeyFingerprint: home.vpsHostKeyFingerprint,
        tunnelPublicKey: home.tunnelPublicKey,
        namespace: home.namespace,
        headscaleService: home.headscaleService,
        routerDeployment: home.routerDeployment,
        vpsHostKey: home.vpsHostKey,
        routerKeyId: home.routerKeyId,
        routerKeyExpires: home.routerKeyExpires,
        routerKeyNextRotation: home.routerKeyNextRotation,
        /** Per user key: the key, its expiry and the `tailscale up` line for a new device (secret). */
        userKeys: pulumi.secret(home.userKeys),
        /** Per key kept in a GitHub secret: where, and the id and expiry of the key it holds. */
        githubSecretKeys: home.githubSecretKeys,
        /** The deployed headscale version: the next `pulumi up` may only move one minor version on. */
        headscaleVersion: home.headscaleVersion,
        /** Where the encrypted backups are: user@host:directory on the VPS. */
        backupStore: home.backupStore,
        backupRecipient: home.backupRecipient,
        /** The age identity that decrypts the backups (secret): keep a copy outside this stack. */
        backupIdentity: home.backupIdentity,
    };
};
