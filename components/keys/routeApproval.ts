import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { approveRoutesCommand, findNodeCommand, HeadscaleCli } from "./cli";
import { parseNodeRoutes } from "./headscaleOutput";

export interface RouteApprovalArgs {
    readonly cli: HeadscaleCli;
    /** The router's node name in headscale. */
    readonly nodeName: string;
    /** Exactly the routes to approve: the validated LAN routes. */
    readonly routes: readonly string[];
    /** How long to wait for the node to register. */
    readonly timeoutSeconds?: number;
}

export const waitForNodeScript = fs.readFileSync(path.join(__dirname, "scripts", "wait-for-node.sh"), "utf8");

/**
 * Approves exactly the configured LAN routes on the router's node, once it has registered.
 * The policy's autoApprovers does the same; this is the second safeguard. Re-running it sets
 * the same list again, so it is idempotent.
 */
export class RouteApproval extends pulumi.ComponentResource {
    public readonly nodeId: pulumi.Output<string>;
    public readonly approvedRoutes: readonly string[];

    constructor(name: string, args: RouteApprovalArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:RouteApproval", name, {}, opts);
        const timeout = args.timeoutSeconds ?? 300;
        const find = new command.local.Command(`${name}-find-node`, {
            create: findNodeCommand(args.cli, args.nodeName, timeout),
            stdin: waitForNodeScript,
            triggers: [args.nodeName, ...args.routes],
            logging: "stderr",
            // The node list shows the first characters of each node's preauth key.
        }, { parent: this, dependsOn: opts?.dependsOn, additionalSecretOutputs: ["stdout"] });

        this.nodeId = pulumi.unsecret(find.stdout.apply((out) => {
            const node = parseNodeRoutes(out).find((n) => n.name === args.nodeName || n.givenName === args.nodeName);
            if (!node) throw new Error(`headscale lists no node named "${args.nodeName}"`);
            return node.id;
        }));
        new command.local.Command(`${name}-approve`, {
            create: this.nodeId.apply((id) => approveRoutesCommand(args.cli, id, args.routes)),
            logging: "stdoutAndStderr",
        }, { parent: this });

        this.approvedRoutes = args.routes;
        this.registerOutputs({ nodeId: this.nodeId });
    }
}
