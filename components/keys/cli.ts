// The headscale CLI as the program runs it: `kubectl exec` into the headscale pod, with the
// same kubeconfig and context as the Kubernetes provider. Pure: no Pulumi.
import { commandLine } from "../shell";

export interface HeadscaleCli {
    /** "" for $KUBECONFIG or ~/.kube/config. */
    readonly kubeconfig: string;
    /** "" for the current context. */
    readonly context: string;
    readonly namespace: string;
    readonly pod: string;
}

/** The words before headscale's own arguments: `kubectl ... exec POD -c headscale -- headscale`. */
export function headscaleWords(cli: HeadscaleCli): string[] {
    return [
        "kubectl",
        ...(cli.kubeconfig ? [`--kubeconfig=${cli.kubeconfig}`] : []),
        ...(cli.context ? [`--context=${cli.context}`] : []),
        `--namespace=${cli.namespace}`,
        "exec", cli.pod, "-c", "headscale", "--",
        "headscale",
    ];
}

/** A complete command line: headscale with these arguments, in the pod. */
export function headscaleCommand(cli: HeadscaleCli, args: readonly string[]): string {
    return commandLine([...headscaleWords(cli), ...args]);
}
