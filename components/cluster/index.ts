import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { stdinScriptCommand } from "../shell";

export interface ClusterCheckArgs {
    /** "" for $KUBECONFIG or ~/.kube/config: the same as the Kubernetes provider's. */
    readonly kubeconfig: string;
    /** "" for the current context. */
    readonly context: string;
    /** The namespace the key steps exec into. */
    readonly namespace: string;
}

export const checkClusterScript = fs.readFileSync(path.join(__dirname, "scripts", "check-cluster.sh"), "utf8");

/** The command line that runs check-cluster.sh (sent on stdin). */
export function checkClusterCommand(args: ClusterCheckArgs): string {
    return stdinScriptCommand([args.kubeconfig, args.context, args.namespace]);
}

/**
 * Checks, before anything is created in the home cluster, that it answers with the stack's
 * kubeconfig and context and that this identity may create namespaces and exec into pods.
 * Without it, an unreachable cluster stops `pulumi up` with the Kubernetes provider's error,
 * which names the API server's address but not the kubeconfig or context that chose it. It
 * runs again whenever the kubeconfig or context changes.
 */
export class ClusterCheck extends pulumi.ComponentResource {
    public readonly check: command.local.Command;

    constructor(name: string, args: ClusterCheckArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:ClusterCheck", name, {}, opts);
        this.check = new command.local.Command(`${name}-kubectl`, {
            create: checkClusterCommand(args),
            stdin: checkClusterScript,
            triggers: [args.kubeconfig, args.context, args.namespace],
            logging: "stderr",
            addPreviousOutputInEnv: false,
        }, { parent: this });
        this.registerOutputs({});
    }
}
