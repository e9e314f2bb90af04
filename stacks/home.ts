import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "../config";
import { sshFingerprint } from "../config/rules";
import { TunnelKeypair } from "../components/tunnelKeypair";

/** What a user needs after `pulumi up` of the home stack. */
export interface HomeStackOutputs {
    readonly loginServer: string;
    readonly routerNodeName: string;
    readonly vpsHostKeyFingerprint: string;
    readonly tunnelPublicKey: pulumi.Output<string>;
}

/**
 * The home stack: headscale and the subnet router in the home cluster, the edge on the VPS,
 * and the keys that tie them together.
 */
export function createHomeStack(config: StackConfig): HomeStackOutputs {
    // Every cluster resource goes through this provider, so the kubeconfig and context
    // come from the stack config rather than from whatever the shell happens to point at.
    new k8s.Provider("home-cluster", {
        kubeconfig: config.kubeconfig || undefined,
        context: config.kubeContext || undefined,
    });

    const tunnelKey = new TunnelKeypair("tunnel");

    return {
        loginServer: `https://${config.hostname}`,
        routerNodeName: config.routerHostname,
        vpsHostKeyFingerprint: sshFingerprint(config.vpsHostKey),
        tunnelPublicKey: tunnelKey.publicKeyOpenssh,
    };
}
