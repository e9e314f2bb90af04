// Entry point of the Pulumi program: validate the stack's config, build the home stack,
// export what a user needs afterwards.
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
