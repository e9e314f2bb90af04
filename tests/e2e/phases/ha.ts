// Two routers (routerReplicas: 2), the second on a second Node: one is primary and one holds
// the tunnel; the primary lost as a lost node is (its containers killed, its pod cut off the
// network), then back; a zombie primary (tailscale frozen, its control session open); back to
// one router, its node and state Secret gone from headscale.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { it } from "node:test";
import { headscalePorts } from "../../../components/headscale/config";
import { waitUntil } from "../../helpers/netns";
import { requireTool } from "../../helpers/tools";
import { E2e, lanRoute, namespace, node2Name, nodeName, stack } from "../context";
import {
    containerProcesses, deploymentOf, haRouters, headscaleCli, isolatePod, killContainers, kubectl, pod, primaryRouter, restarts, routeTable, routerDeployments, routerPod, routerPodOf,
    signalContainers, tryKubectl, tunnelHolder,
} from "../lib/cluster";
import { headscaleThroughVps, untilDeviceReachesLan, watchLan } from "../lib/device";
import { changedResources, setConfig } from "../lib/stack";
import { mustPulumi } from "../pulumiCli";

export function haPhase(e2e: E2e): void {
    it("routerReplicas 2: pulumi up adds a second router on the second Node, restarting neither the first nor headscale; both register with their routes approved, and one is primary", async () => {
        e2e.needUp();
        const started = Date.now();
        e2e.home2 = await e2e.startNode(node2Name);
        e2e.figures.report("second node Ready", (Date.now() - started) / 1000);
        const routerBefore = await routerPod(e2e);
        const headscaleBefore = (await pod(e2e, "headscale-0")).metadata.uid;
        await setConfig(e2e, "routerReplicas", "2");
        const lan = watchLan(e2e);
        const upStarted = Date.now();
        const r = await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
        const during = await lan.stop();
        const changed = changedResources(r.stdout);
        e2e.figures.report("routerReplicas 2: pulumi up", (Date.now() - upStarted) / 1000, `the device reached the LAN ${during.ok} times, failed ${during.failed}`);
        for (const line of changed) e2e.figures.line(line);
        const names = [...new Set(changed.map((l) => l.split(" ")[2]))];
        assert.deepEqual(names.filter((n) => !/^(router-1-(deployment|started|node-removal|routes|routes-find-node|routes-approve)|router-pdb|router-role|overlay-e2e)$/.test(n)), [], changed.join("\n"));
        const routerAfter = await routerPod(e2e);
        assert.equal(routerAfter.metadata.uid, routerBefore.metadata.uid, "router 0 kept its pod");
        assert.deepEqual(restarts(routerAfter), restarts(routerBefore), "router 0 restarted nothing");
        assert.equal((await pod(e2e, "headscale-0")).metadata.uid, headscaleBefore, "headscale kept its pod");

        let table: Awaited<ReturnType<typeof routeTable>> = [];
        const settled = await waitUntil(async () => {
            table = (await routeTable(e2e)).filter((n) => n.name.startsWith("home-router"));
            return table.length === 2 && table.every((n) => n.approved.includes(lanRoute) && n.online) && table.filter((n) => n.primary.includes(lanRoute)).length === 1;
        }, 120_000, 2_000);
        assert.ok(settled, `two routers, approved, one primary: ${JSON.stringify(table)}`);
        assert.deepEqual(table.map((n) => n.name).sort(), haRouters.map((router) => router.nodeName));
        const listing = (await headscaleCli(e2e, "nodes", "list-routes")).stdout.replace(/\x1b\[[0-9;]*m/g, "");
        e2e.figures.line(`headscale nodes list-routes (the README's kubectl line):\n${listing.trimEnd().split("\n").map((l) => `      ${l}`).join("\n")}`);
        e2e.figures.line(`the tunnel is held by ${await tunnelHolder(e2e, routerDeployments)}`);
        const placement = await Promise.all(routerDeployments.map(async (d) => (await routerPodOf(e2e, d)).node.name));
        assert.deepEqual(placement, [nodeName, node2Name], "one router on each node");
        await untilDeviceReachesLan(e2e, 60_000);
    });

    it("failover: the primary router lost as a lost node is (its containers killed, its pod cut off the network): the other serves the LAN, and takes the tunnel if the lost one held it", async () => {
        e2e.needUp();
        const primary = deploymentOf((await primaryRouter(e2e))!);
        const other = routerDeployments.find((d) => d !== primary)!;
        // Let the primary hold the tunnel too, so that losing it measures both failovers: the
        // holder's tunnel container killed, which its kubelet starts again as a standby.
        const holder = await tunnelHolder(e2e, routerDeployments);
        if (holder !== primary) {
            const h = await routerPodOf(e2e, holder!);
            const started = Date.now();
            await killContainers(e2e, h.name, ["tunnel"]);
            assert.ok(await waitUntil(async () => (await tunnelHolder(e2e, [primary])) === primary, 60_000, 250), "the primary did not take the tunnel");
            e2e.figures.report("tunnel takeover (the holder's tunnel container killed): the other router held the port after", (Date.now() - started) / 1000);
        }
        await untilDeviceReachesLan(e2e, 60_000);
        const victim = await routerPodOf(e2e, primary);
        const killedAt = Date.now();
        // Cut off first, as a lost node is: no FIN or RST reaches the VPS, whose sshd keeps the
        // connection until its tunnel-session misses the heartbeat. Then its processes end; the
        // containers its kubelet starts again reach nothing.
        await isolatePod(e2e, victim.name, true);
        try {
            await diagnosed(e2e, async () => {
                await killContainers(e2e, victim.name, ["tailscale", "tunnel"]);
                const [lanMs, tunnelMs] = await Promise.all([
                    untilDeviceReachesLan(e2e, 90_000),
                    (async () => {
                        assert.ok(await waitUntil(() => headscaleThroughVps(e2e), 90_000, 250), "headscale did not answer through the VPS again");
                        return Date.now() - killedAt;
                    })(),
                ]);
                e2e.figures.report("failover, the primary (holding the tunnel) lost: the device reached the LAN again after", lanMs / 1000,
                    `headscale answered through the VPS again after ${(tunnelMs / 1000).toFixed(1)} s (goals 30 s and 20 s: the VPS ends a lost holder's connection 15 s after its last heartbeat)`);
                assert.equal(deploymentOf((await primaryRouter(e2e)) ?? ""), other, "the other router is primary");
                assert.equal(await tunnelHolder(e2e, [other]), other, "the other router holds the tunnel");
                assert.ok(tunnelMs <= 25_000, `headscale answered through the VPS again only after ${(tunnelMs / 1000).toFixed(1)} s`);
            });
        } catch (err) {
            await isolatePod(e2e, victim.name, false);
            throw err;
        }
        e2e.killed = primary;
        e2e.survivor = other;
    });

    it("the lost router comes back as a standby (its pod on the network again): the device keeps the LAN while it rejoins, and the primary role stays where it is", async () => {
        e2e.needUp();
        assert.ok(e2e.killed, "the failover test ran");
        const back = await routerPodOf(e2e, e2e.killed);
        const lan = watchLan(e2e);
        const started = Date.now();
        await isolatePod(e2e, back.name, false);
        const nodeOfKilled = haRouters.find((router) => router.name === e2e.killed)!.nodeName;
        assert.ok(await waitUntil(async () => (await routeTable(e2e)).find((n) => n.name === nodeOfKilled)?.online === true, 120_000, 1_000), `${nodeOfKilled} did not come back online`);
        const online = Date.now() - started;
        await new Promise((resolve) => setTimeout(resolve, 15_000));
        const during = await lan.stop();
        e2e.figures.report("rejoin: the lost router online again after", online / 1000, `over ${((Date.now() - started) / 1000).toFixed(1)} s the device reached the LAN ${during.ok} times, failed ${during.failed}`);
        assert.equal(during.failed, 0, "the device lost the LAN while the router rejoined");
        assert.equal(deploymentOf((await primaryRouter(e2e)) ?? ""), e2e.survivor, "the recovered router did not take the primary role back");
    });

    it("zombie: the primary's tailscale frozen (SIGSTOP), its control session open but forwarding nothing: headscale's HA probe moves the primary role, and the device reaches the LAN again", async () => {
        e2e.needUp();
        const zombie = await routerPodOf(e2e, e2e.survivor);
        await signalContainers(e2e, zombie.name, "SIGSTOP", ["tailscale"]);
        try {
            const lanMs = await untilDeviceReachesLan(e2e, 120_000);
            const moved = await waitUntil(async () => deploymentOf((await primaryRouter(e2e)) ?? "") === e2e.killed, 60_000, 1_000);
            e2e.figures.report("zombie (the primary's tailscale frozen; probe every 10 s, 5 s timeout): the device reached the LAN again after", lanMs / 1000,
                `the tunnel held by ${await tunnelHolder(e2e, [e2e.killed, e2e.survivor])}`);
            assert.ok(moved, `the primary role did not move to ${e2e.killed}`);
            const frozen = (await routeTable(e2e)).find((n) => deploymentOf(n.name) === e2e.survivor)!;
            assert.equal(frozen.online, true, "the zombie kept its control session (online), so only the probe could move the primary role");
        } catch (err) {
            await signalContainers(e2e, zombie.name, "SIGCONT", ["tailscale"]);
            throw err;
        }
    });

    it("the frozen router thawed rejoins without flapping: the device keeps the LAN, and the primary role stays", async () => {
        e2e.needUp();
        const zombie = await routerPodOf(e2e, e2e.survivor);
        const lan = watchLan(e2e);
        await signalContainers(e2e, zombie.name, "SIGCONT", ["tailscale"]);
        await new Promise((resolve) => setTimeout(resolve, 25_000));
        const during = await lan.stop();
        e2e.figures.report("thawed: over 25 s, failed tries to reach the LAN", String(during.failed), `${during.ok} answered`);
        assert.equal(during.failed, 0, "the device lost the LAN while the thawed router rejoined");
        assert.equal(deploymentOf((await primaryRouter(e2e)) ?? ""), e2e.killed, "the thawed router did not take the primary role back");
    });

    it("routerReplicas back to 1: the second router's node is deleted from headscale and its state Secret goes; the device keeps the LAN throughout", async () => {
        e2e.needUp();
        const holderBefore = await tunnelHolder(e2e, routerDeployments);
        await setConfig(e2e, "routerReplicas", "1");
        const lan = watchLan(e2e);
        const started = Date.now();
        let r: Awaited<ReturnType<typeof mustPulumi>>;
        let during: Awaited<ReturnType<typeof lan.stop>>;
        try {
            r = await diagnosed(e2e, async () => {
                const up = await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes"], { timeoutMs: 600_000 });
                await untilDeviceReachesLan(e2e, 60_000);
                return up;
            });
        } finally {
            during = await lan.stop();
        }
        e2e.figures.report("routerReplicas 1: pulumi up", (Date.now() - started) / 1000,
            `the tunnel was held by ${holderBefore}; the device reached the LAN ${during.ok} times, failed ${during.failed}, longest gap ${(during.longestGapMs / 1000).toFixed(1)} s`);
        for (const line of changedResources(r.stdout)) e2e.figures.line(line);
        assert.match(r.stdout, /deleted the node 'home-router-1' \(id \d+\) from headscale/);
        assert.deepEqual((await routeTable(e2e)).map((n) => n.name).filter((n) => n.startsWith("home-router")), ["home-router"], "no stale node left");
        const secret = await tryKubectl(e2e, [`--namespace=${namespace}`, "get", "secret", "subnet-router-1-state"]);
        assert.notEqual(secret.status, 0, "the second router's state Secret is gone");
        await diagnosed(e2e, async () => assert.equal(during.failed, 0, "the device lost the LAN during the scale-down"));
        await mustPulumi(e2e.project, ["preview", "--stack", stack, "--expect-no-changes"], { timeoutMs: 300_000 });
        await e2e.home2!.stop();
        e2e.home2 = undefined;
        await kubectl(e2e, "delete", "node", node2Name);
    });
}

/**
 * For a failed HA test: each router's tunnel log and its reach to headscale (Service and pod),
 * what the VPS's sshd and tunnel-session said, each Node's service proxy and network-policy
 * controller (the Service rules written, the pod addresses admitted, the rules that refused,
 * their logs), and the device's log.
 */
async function tunnelDiagnostics(e2e: E2e): Promise<string> {
    const parts: string[] = [];
    for (const d of routerDeployments) {
        try {
            const p = await routerPodOf(e2e, d);
            const log = await tryKubectl(e2e, [`--namespace=${namespace}`, "logs", p.name, "-c", "tunnel", "--timestamps", "--tail=15"]);
            parts.push(`--- ${d} (${p.name} on ${p.node.name}) tunnel log ---\n${log.stdout}${log.stderr}`);
        } catch (err) {
            parts.push(`--- ${d}: ${(err as Error).message}`);
        }
    }
    const pods = await tryKubectl(e2e, [`--namespace=${namespace}`, "get", "pods", "--output=wide"]);
    parts.push(`--- the pods ---\n${pods.stdout}${pods.stderr}`);
    parts.push(await headscaleReachability(e2e));
    const journal = await e2e.vm.ssh("journalctl --no-pager -o short-precise -t overlay-tunnel -t sshd --since '-5min' | tail -n 25", { timeoutMs: 20_000 });
    parts.push(`--- the VPS's journal (sshd, overlay-tunnel), last 5 minutes ---\n${journal.stdout}${journal.stderr}`);
    for (const node of [e2e.home, e2e.home2]) {
        if (!node) continue;
        const sets = e2e.netnsOf(node.name).run(requireTool("ipset"), ["save"]);
        const members = sets.stdout.split("\n").filter((l) => l.startsWith("add ")).join("\n");
        parts.push(`--- ${node.name}: the ipsets' members ---\n${members}${sets.stderr}`);
        const rules = e2e.netnsOf(node.name).run(requireTool("iptables-save"), ["-c"]);
        const serviceRules = rules.stdout.split("\n").filter((l) => l.includes("-A KUBE-SERVICES")).length;
        const refusing = rules.stdout.split("\n").filter((l) => /-j (REJECT|DROP)/.test(l) && !l.startsWith("[0:0]")).join("\n");
        parts.push(`--- ${node.name}: ${serviceRules} kube-proxy Service rules; the rules that refused or dropped packets ---\n${refusing}${rules.stderr}`);
        for (const daemon of ["kube-proxy", "kube-router"]) parts.push(node.logs(daemon).split("\n").slice(-12).join("\n"));
    }
    parts.push(`--- the device's tailscaled, last lines ---\n${e2e.device?.log().slice(-1500) ?? ""}`);
    return parts.join("\n");
}

/** From each router pod's network namespace: headscale's Service and its pod, on the port the tunnel forwards to. */
async function headscaleReachability(e2e: E2e): Promise<string> {
    const lines: string[] = ["--- each router pod to headscale ---"];
    try {
        const service = (await tryKubectl(e2e, [`--namespace=${namespace}`, "get", "service", "headscale", "--output=jsonpath={.spec.clusterIP}"])).stdout;
        const podIp = (await pod(e2e, "headscale-0")).status.podIP;
        for (const d of routerDeployments) {
            const p = await routerPodOf(e2e, d);
            const { pids } = await containerProcesses(e2e, p.name, "tunnel");
            for (const target of [`${service}:${headscalePorts.http}`, `${podIp}:${headscalePorts.http}`]) {
                const r = spawnSync(requireTool("nsenter"), ["-t", String(pids[0]), "-n", requireTool("curl"), "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", `http://${target}/health`], { encoding: "utf8", timeout: 10_000 });
                lines.push(`${d} → ${target}: ${r.stdout || "-"} ${r.stderr.trim()}`);
            }
        }
    } catch (err) {
        lines.push((err as Error).message);
    }
    return lines.join("\n");
}

/** Runs a step of an HA test; if it fails, its error carries tunnelDiagnostics, where a CI log shows it. */
async function diagnosed<T>(e2e: E2e, step: () => Promise<T>): Promise<T> {
    try {
        return await step();
    } catch (err) {
        // Gathering them can fail too (the VM gone, a pod replaced meanwhile): the test's own error stays first.
        const diagnostics = await tunnelDiagnostics(e2e).catch((d: Error) => `(the diagnostics could not be gathered: ${d.message})`);
        throw new Error(`${(err as Error).message}\n${diagnostics}`, { cause: err });
    }
}
