// The harness's view of the VPS: the files the program's steps install and what a hand edit
// would change, the steps' own command lines run again by hand, and the drift phase's edits.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { tunnelUser } from "../../../components/router/tunnel";
import { shellQuote } from "../../../components/shell";
import { backupAuthorizedKeysPath, backupSshdDropInPath } from "../../../components/vps/backupStore";
import { turnserverConfPath } from "../../../components/vps/coturn";
import { firewallPath } from "../../../components/vps/firewall";
import { nginxLimitsPath, tunnelLimitsPath } from "../../../components/vps/limits";
import { nginxSitePath, providedTlsFiles } from "../../../components/vps/nginx";
import { authorizedKeysPath, sshdDropInPath, tunnelSessionPath } from "../../../components/vps/sshd";
import { repoRoot } from "../../helpers/stack";
import { E2e, hostname } from "../context";
import { exec, mustExec, Result } from "../exec";
import { Connection, sshArgs } from "../ssh";
import { stateResources } from "./stack";

/** The files the program's VPS steps install. */
export const stepPaths = [authorizedKeysPath, sshdDropInPath, backupAuthorizedKeysPath, backupSshdDropInPath, nginxSitePath, turnserverConfPath, firewallPath,
    providedTlsFiles(hostname).certificate, providedTlsFiles(hostname).privateKey, nginxLimitsPath, tunnelLimitsPath, tunnelSessionPath, "/etc/nginx/nginx.conf"];

/** sha256 of every file a step would install (or "absent"), the tunnel user, the firewall table, and each service's main PID and start. */
export async function vpsState(e2e: E2e, files: readonly string[] = stepPaths): Promise<Record<string, string>> {
    const units = ["nginx", "coturn", "ssh", "nftables"];
    const script = [
        ...files.map((f) => `printf '%s ' ${shellQuote(f)}; if [ -f ${shellQuote(f)} ]; then sha256sum < ${shellQuote(f)} | cut -d' ' -f1; else echo absent; fi`),
        `printf 'sites-enabled '; readlink /etc/nginx/sites-enabled/overlay-headscale || echo absent`,
        `printf 'user-${tunnelUser} '; id -u ${tunnelUser} 2>/dev/null || echo absent`,
        ...units.map((u) => `printf '%s ' ${u}; systemctl show -p MainPID -p ActiveEnterTimestampMonotonic -p InvocationID --value ${u} | tr '\\n' ' '; echo`),
        // Rules with their handles (new handles would mean a reload), without the rate limiter's state.
        `printf 'nft '; (nft -s -a list chain inet overlay_firewall input 2>/dev/null || echo absent) | sha256sum | cut -d' ' -f1`,
    ].join("\n");
    const r = await e2e.vm.ssh(script);
    assert.equal(r.status, 0, r.stderr);
    return Object.fromEntries(r.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1).trim()]));
}

/** What a hand edit on the VM would change: each step file's sha256, the enabled site, the tunnel user, and the firewall table (terse: no handles, no rate limiter state). */
export async function appliedState(e2e: E2e): Promise<Record<string, string>> {
    const services = new Set(["nginx", "coturn", "ssh", "nftables", "nft"]);
    const files = Object.fromEntries(Object.entries(await vpsState(e2e)).filter(([key]) => !services.has(key)));
    const table = await e2e.vm.ssh("(nft -s -t list table inet overlay_firewall 2>/dev/null || echo absent) | sha256sum | cut -d' ' -f1");
    assert.equal(table.status, 0, table.stderr);
    return { ...files, table: table.stdout.trim() };
}

/** The VPS steps as the state holds them: their connection, command lines and stdin. */
export async function remoteCommands(e2e: E2e): Promise<{ name: string; inputs: any }[]> {
    return (await stateResources(e2e)).filter((r) => r.type === "command:remote:Command").map((r) => ({ name: r.urn.split("::").pop(), inputs: r.inputs }));
}

/** Runs one of the program's remote command lines again, over SSH from home, with its stdin. */
export function rerun(e2e: E2e, step: { inputs: any }, line: string): Promise<Result> {
    return exec(e2e.world.home, "ssh", sshArgs(step.inputs.connection as Connection, e2e.run, line), { input: step.inputs.stdin, timeoutMs: 180_000 });
}

/** The workflow's drift summary (scripts/vps-drift-summary.sh) of this pulumi output. */
export async function driftSummary(e2e: E2e, output: string): Promise<string> {
    const log = path.join(e2e.run, "pulumi-output.log");
    fs.writeFileSync(log, output);
    return (await mustExec(undefined, "bash", [path.join(repoRoot, "scripts", "vps-drift-summary.sh"), log])).stdout;
}

/** The four hand edits of the drift phase: each on the VM, and what the step's check must name. */
export const driftEdits = [
    { step: "nginx", edit: "the nginx site broken by hand", script: `printf 'this is not nginx;\\n' >> ${nginxSitePath}`, names: /overlay-headscale: its content differs/ },
    { step: "coturn", edit: "coturn's config replaced, as a package upgrade would, and coturn restarted", script: `printf 'listening-port=3478\\nno-cli\\n' > ${turnserverConfPath} && systemctl restart coturn`, names: /turnserver\.conf: its content differs/ },
    { step: "firewall", edit: "nft flush ruleset", script: "nft flush ruleset", names: /the firewall table overlay_firewall is not loaded/ },
    { step: "tunnel-endpoint", edit: "the tunnel user's authorized_keys without its restrictions", script: `sed -i 's/^[^ ]* ssh-ed25519 /ssh-ed25519 /' ${authorizedKeysPath}`, names: /authorized_keys: its content differs/ },
] as const;
