// Entry point of the Pulumi program: validate the stack's config, build the home stack,
// export what a user needs afterwards.
import * as pulumi from "@pulumi/pulumi";
import { loadStackConfig } from "./config";
import { createHomeStack } from "./stacks/home";

const home = createHomeStack(loadStackConfig());

export const loginServer = home.loginServer;
export const routerNodeName = home.routerNodeName;
export const vpsHostKeyFingerprint = home.vpsHostKeyFingerprint;
export const tunnelPublicKey = home.tunnelPublicKey;
export const namespace = home.namespace;
export const headscaleService = home.headscaleService;
export const routerDeployment = home.routerDeployment;
export const vpsHostKey = home.vpsHostKey;
export const routerKeyId = home.routerKeyId;
export const routerKeyExpires = home.routerKeyExpires;
export const routerKeyNextRotation = home.routerKeyNextRotation;
/** Per user key: the key, its expiry and the `tailscale up` line for a new device (secret). */
export const userKeys = pulumi.secret(home.userKeys);
