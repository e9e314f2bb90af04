// The headscale CLI as the program runs it: `kubectl exec` into the headscale pod, with the
// same kubeconfig and context as the Kubernetes provider. Pure: no Pulumi.
import { commandLine, stdinScriptCommand } from "../shell";

export interface HeadscaleCli {
    /** "" for $KUBECONFIG or ~/.kube/config. */
    readonly kubeconfig: string;
    /** "" for the current context. */
    readonly context: string;
    readonly namespace: string;
    readonly pod: string;
}

/** kubectl with the cluster's kubeconfig and context, in headscale's namespace. */
export function kubectlWords(cli: HeadscaleCli): string[] {
    return [
        "kubectl",
        ...(cli.kubeconfig ? [`--kubeconfig=${cli.kubeconfig}`] : []),
        ...(cli.context ? [`--context=${cli.context}`] : []),
        `--namespace=${cli.namespace}`,
    ];
}

/** The words before headscale's own arguments: `kubectl ... exec POD -c headscale -- headscale`. */
export function headscaleWords(cli: HeadscaleCli): string[] {
    return [...kubectlWords(cli), "exec", cli.pod, "-c", "headscale", "--", "headscale"];
}

/** A complete command line: headscale with these arguments, in the pod. */
export function headscaleCommand(cli: HeadscaleCli, args: readonly string[]): string {
    return commandLine([...headscaleWords(cli), ...args]);
}

export interface KeyOwner {
    /** Numeric headscale user id (0.29's `--user` takes the id). */
    readonly userId?: string;
    readonly tags?: readonly string[];
}

export interface KeyFlags {
    readonly reusable: boolean;
    readonly ephemeral: boolean;
    readonly lifetimeDays: number;
}

/** `headscale preauthkeys create ... --output json` */
export function mintKeyCommand(cli: HeadscaleCli, owner: KeyOwner, flags: KeyFlags): string {
    return headscaleCommand(cli, [
        "preauthkeys", "create",
        ...(owner.userId !== undefined ? ["--user", owner.userId] : ["--tags", (owner.tags ?? []).join(",")]),
        ...(flags.reusable ? ["--reusable"] : []),
        ...(flags.ephemeral ? ["--ephemeral"] : []),
        "--expiration", `${flags.lifetimeDays}d`,
        "--output", "json",
    ]);
}

/** `headscale preauthkeys expire --id N` */
export function expireKeyCommand(cli: HeadscaleCli, id: string): string {
    return headscaleCommand(cli, ["preauthkeys", "expire", "--id", id]);
}

/** Creates the user if missing (`users create` fails when it exists), then lists the users. */
export function ensureUserCommand(cli: HeadscaleCli, user: string): string {
    return `${headscaleCommand(cli, ["users", "create", user])} >/dev/null 2>&1 || true; ${headscaleCommand(cli, ["users", "list", "--output", "json"])}`;
}

/** `headscale nodes approve-routes --identifier N --routes A,B` */
export function approveRoutesCommand(cli: HeadscaleCli, nodeId: string, routes: readonly string[]): string {
    return headscaleCommand(cli, ["nodes", "approve-routes", "--identifier", nodeId, "--routes", routes.join(",")]);
}

/** The command line that runs wait-for-node.sh (sent on stdin) for a node. */
export function findNodeCommand(cli: HeadscaleCli, nodeName: string, timeoutSeconds: number): string {
    return stdinScriptCommand([nodeName, String(timeoutSeconds), ...headscaleWords(cli)]);
}
