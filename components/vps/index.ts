import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { headscalePorts } from "../headscale/config";
import { tunnelUser } from "../router/tunnel";
import { renderTurnserverConf, turnserverConfPath } from "./coturn";
import { firewallPath, renderFirewall } from "./firewall";
import { nginxLimitsPath, nginxWorkerConnections, renderNginxLimits, renderTunnelLimits, tunnelLimitsPath } from "./limits";
import { acmeTlsFiles, nginxSitePath, providedTlsFiles, renderNginxSite } from "./nginx";
import { backupAuthorizedKeysPath, backupSshdDropInPath, renderBackupAuthorizedKeys, renderBackupSshdDropIn } from "./backupStore";
import { authorizedKeysPath, renderAuthorizedKeys, renderSshdDropIn, sshdDropInPath, tunnelSessionPath, tunnelSessionScript } from "./sshd";
import { VpsStepState } from "./stepState";
import { renderStepStdin, StepCall, stepCommand, StepName } from "./steps";

export type VpsTls =
    | { readonly mode: "acme"; readonly email: string }
    | { readonly mode: "provided"; readonly certificate: string; readonly privateKey: pulumi.Input<string> };

export interface VpsEdgeArgs {
    /** How Pulumi reaches the VPS; the host key is pinned. */
    readonly connection: {
        readonly host: string;
        readonly port: number;
        readonly user: string;
        readonly privateKey: pulumi.Input<string>;
        /** "ssh-ed25519 AAAA...": Pulumi refuses any other host. */
        readonly hostKey: string;
    };
    readonly hostname: string;
    readonly vpsIpv4: string;
    /** "" when the VPS has no IPv6. */
    readonly vpsIpv6: string;
    readonly tunnelPort: number;
    /** The tunnel keypair's public half, authorised for the tunnel user. */
    readonly tunnelPublicKey: pulumi.Input<string>;
    /** The backup jobs' public key, authorised for the SFTP-only backup account. */
    readonly backupPublicKey: pulumi.Input<string>;
    /** Whether `pulumi destroy` leaves the backups on the VPS. */
    readonly keepBackupsOnDestroy: boolean;
    readonly tls: VpsTls;
}

/**
 * The VPS edge: the tunnel user and its sshd rules, the backup account, nginx in front of
 * headscale, coturn for STUN and the firewall, each its own idempotent step over SSH.
 * `pulumi destroy` runs each step's remove, which undoes what it added (distribution packages
 * stay installed, and so do the backups unless keepBackupsOnDestroy is false). Beside each
 * step, a VpsStepState checks it on `pulumi refresh` and applies it again where it drifted.
 */
export class VpsEdge extends pulumi.ComponentResource {
    /** The VPS's ED25519 host key, as the tunnel step read it on the VPS. */
    public readonly hostKey: pulumi.Output<string>;

    constructor(name: string, args: VpsEdgeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:VpsEdge", name, {}, opts);
        const connection = args.connection;
        const step = (id: string, script: StepName, call: pulumi.Input<StepCall>, removeParams: string[], extra: pulumi.CustomResourceOptions = {}, secret = false) => {
            const rendered = pulumi.output(call).apply((c) => renderStepStdin(script, c as StepCall));
            const stdin = secret ? pulumi.secret(rendered) : rendered;
            const apply = stepCommand("apply", args.connection.user);
            const applied = new command.remote.Command(`${name}-${id}`, {
                connection,
                create: apply,
                update: apply,
                delete: `${stepCommand("remove", args.connection.user)}${removeParams.map((p) => ` ${p}`).join("")}`,
                stdin,
                // Steps log to stderr what they change; the secret-bearing one logs nothing.
                logging: secret ? "none" : "stdoutAndStderr",
                // The steps need no earlier output, and a stock sshd would refuse the variables.
                addPreviousOutputInEnv: false,
            }, { parent: this, ...extra, ...(secret ? { additionalSecretOutputs: ["stdout", "stderr"] } : {}) });
            new VpsStepState(`${name}-${id}-state`, {
                step: id,
                connection,
                stdin,
                checkCommand: stepCommand("check", args.connection.user),
                applyCommand: apply,
                secret,
            }, { parent: this, dependsOn: [applied], deletedWith: applied });
            return applied;
        };

        const tunnel = step("tunnel-endpoint", "tunnel-endpoint", pulumi.output(args.tunnelPublicKey).apply((publicKey) => ({
            files: {
                [authorizedKeysPath]: renderAuthorizedKeys({ publicKey, tunnelPort: args.tunnelPort }),
                [sshdDropInPath]: renderSshdDropIn({ tunnelPort: args.tunnelPort }),
                [tunnelLimitsPath]: renderTunnelLimits(tunnelUser),
                [tunnelSessionPath]: tunnelSessionScript,
            },
        })), []);

        const backupStore = step("backup-store", "backup-store", pulumi.output(args.backupPublicKey).apply((publicKey) => ({
            files: {
                [backupAuthorizedKeysPath]: renderBackupAuthorizedKeys({ publicKey }),
                [backupSshdDropInPath]: renderBackupSshdDropIn(),
            },
        })), [args.keepBackupsOnDestroy ? "keep" : "delete"]);

        const tlsFiles = args.tls.mode === "acme" ? acmeTlsFiles(args.hostname) : providedTlsFiles(args.hostname);
        const tlsKey = args.tls.mode === "provided"
            ? step("tls-key", "tls-key", pulumi.output(args.tls.privateKey).apply((key) => ({ files: { [tlsFiles.privateKey]: key } })), [args.hostname], {}, true)
            : undefined;
        const site = { hostname: args.hostname, tunnelPort: args.tunnelPort };
        const nginx = step("nginx", "nginx", {
            params: [args.hostname, args.tls.mode, args.tls.mode === "acme" ? args.tls.email : "", String(nginxWorkerConnections)],
            files: {
                [nginxSitePath]: renderNginxSite({ ...site, tls: tlsFiles }),
                [`${nginxSitePath}.http-only`]: renderNginxSite({ ...site, tls: undefined }),
                [nginxLimitsPath]: renderNginxLimits(),
                ...(args.tls.mode === "provided" ? { [tlsFiles.certificate]: args.tls.certificate } : {}),
            },
        }, [args.hostname], { dependsOn: tlsKey ? [tlsKey] : [] });

        const coturn = step("coturn", "coturn", {
            files: { [turnserverConfPath]: renderTurnserverConf({ listen: [args.vpsIpv4, ...(args.vpsIpv6 ? [args.vpsIpv6] : [])] }) },
        }, []);

        // Last: every other step has run, so a mistake here cannot cut them off.
        step("firewall", "firewall", {
            files: { [firewallPath]: renderFirewall({ sshPort: args.connection.port, stunPort: headscalePorts.stun }) },
        }, [], { dependsOn: [tunnel, backupStore, nginx, coturn] });

        // The step prints the host key last.
        this.hostKey = tunnel.stdout.apply((out) => (out ?? "").trim().split("\n").pop() ?? "");
        this.registerOutputs({ hostKey: this.hostKey });
    }
}
