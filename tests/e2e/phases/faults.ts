// Faults and their repair, with nothing but the program's own design to repair them: the
// tunnel's ssh killed, the VPS's sshd gone for a moment (and the tunnel's log saying why), the
// headscale pod deleted; nginx carried both kinds of upgraded connection; every VPS step run a
// second time changes nothing; the limits for many clients are in force on the VM.
import assert from "node:assert/strict";
import { it } from "node:test";
import { tunnelUser } from "../../../components/router/tunnel";
import { nginxWorkerConnections, vpsOpenFiles } from "../../../components/vps/limits";
import { waitUntil } from "../../helpers/netns";
import { E2e, namespace } from "../context";
import { argv, containerLog, containerProcesses, headscaleCli, kubectl, pod, routerPod } from "../lib/cluster";
import { headscaleThroughVps, untilDeviceReachesLan } from "../lib/device";
import { remoteCommands, rerun, vpsState } from "../lib/vps";

/** The ssh that holds the router's connection, in its tunnel container ("" if none). */
async function connectionSsh(e2e: E2e, routerPodName: string): Promise<string> {
    const { pids } = await containerProcesses(e2e, routerPodName, "tunnel");
    return String(pids.find((pid) => {
        const args = argv(pid);
        return args[0] === "ssh" && args.includes("ControlMaster=auto");
    }) ?? "");
}

export function faultsPhase(e2e: E2e): void {
    it("fault: the tunnel's ssh is killed; the tunnel container connects again and the device reaches the LAN again", async () => {
        e2e.needUp();
        const router = (await routerPod(e2e)).metadata.name;
        const before = await connectionSsh(e2e, router);
        assert.match(before, /^\d+$/, "the tunnel's ssh");
        const killed = Date.now();
        process.kill(Number(before), "SIGKILL");
        assert.ok(await waitUntil(async () => /^\d+$/.test(await connectionSsh(e2e, router)) && (await connectionSsh(e2e, router)) !== before, 60_000, 50), "no new ssh");
        const newSsh = Date.now() - killed;
        await untilDeviceReachesLan(e2e, 120_000);
        e2e.figures.report("tunnel fault: new ssh after", newSsh / 1000, `the device reached the LAN again after ${((Date.now() - killed) / 1000).toFixed(1)} s`);
    });

    it("fault: the VPS's sshd gone for a moment: the tunnel container's log says why in ssh's words and its own, and the tunnel comes back", async () => {
        e2e.needUp();
        const router = (await routerPod(e2e)).metadata.name;
        const logBefore = await containerLog(e2e, router, "tunnel");
        // The listener stopped and the tunnel's session ended; the harness's own session stays.
        const cut = await e2e.vm.ssh(`systemctl stop ssh.service && pkill -KILL -u ${tunnelUser} -x sshd; sleep 10; systemctl start ssh.service`, { timeoutMs: 60_000 });
        assert.equal(cut.status, 0, cut.stderr);
        const started = Date.now();
        assert.ok(await waitUntil(() => headscaleThroughVps(e2e), 120_000, 500), "headscale did not answer through the VPS again");
        const back = (Date.now() - started) / 1000;
        const log = (await containerLog(e2e, router, "tunnel")).slice(logBefore.length);
        const lines = log.split("\n").filter((l) => l.trim());
        assert.ok(lines.some((l) => /Connection refused|closed by remote host|Broken pipe|Connection reset/.test(l)), `ssh's own reason is not in the log:\n${log}`);
        assert.ok(lines.some((l) => /^overlay: ssh exited with status 255 after \d+s; connecting again in \d+s$/.test(l)), `the script's line is not in the log:\n${log}`);
        e2e.figures.report("sshd on the VPS stopped for 10 s: headscale answered through the VPS again after sshd started, in", back);
        for (const line of lines.slice(0, 8)) e2e.figures.line(`tunnel log: ${line}`);
        await untilDeviceReachesLan(e2e, 120_000);
    });

    it("Upgrade requests went through nginx and the tunnel both ways (control and DERP)", async () => {
        e2e.needUp();
        // nginx logs an upgraded connection when it ends: the tunnel faults ended the control
        // (ts2021) and DERP connections of both nodes. 101 and bytes sent: switched, then used.
        const r = await e2e.vm.ssh("awk '$9 == 101 && $10 > 0 {print $6, $7}' /var/log/nginx/access.log | sed 's/[?].*//' | sort -u");
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n"), ['"GET /derp', '"POST /ts2021'], r.stdout);
    });

    it("fault: the headscale pod is deleted; its StatefulSet brings it back and the same nodes reconnect without new keys", async () => {
        e2e.needUp();
        const nodes = async () => (JSON.parse((await headscaleCli(e2e, "nodes", "list", "--output", "json")).stdout) as any[])
            .map((n) => `${n.id} ${n.name} ${n.machine_key} ${n.node_key}`).sort();
        const before = await nodes();
        const keysBefore = JSON.parse((await headscaleCli(e2e, "preauthkeys", "list", "--output", "json")).stdout).length;
        const oldUid = (await pod(e2e, "headscale-0")).metadata.uid;
        const started = Date.now();
        await kubectl(e2e, `--namespace=${namespace}`, "delete", "pod", "headscale-0", "--wait=true", "--timeout=60s");
        await kubectl(e2e, `--namespace=${namespace}`, "wait", "pod/headscale-0", "--for=condition=Ready", "--timeout=120s");
        const ready = (Date.now() - started) / 1000;
        assert.notEqual((await pod(e2e, "headscale-0")).metadata.uid, oldUid, "a new pod");
        await untilDeviceReachesLan(e2e, 180_000);
        e2e.figures.report("headscale pod deleted: a new one ready after", ready, `the device reached the LAN again after ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.deepEqual(await nodes(), before, "the same nodes with the same keys");
        assert.equal(JSON.parse((await headscaleCli(e2e, "preauthkeys", "list", "--output", "json")).stdout).length, keysBefore, "no key was minted");
    });

    it("every VPS step a second time changes nothing and restarts nothing", async () => {
        e2e.needUp();
        const before = await vpsState(e2e);
        let total = 0;
        for (const step of await remoteCommands(e2e)) {
            const r = await rerun(e2e, step, step.inputs.create);
            assert.equal(r.status, 0, `${step.name}: ${r.stderr}`);
            total += r.ms;
        }
        e2e.figures.report("second run of all VPS steps by hand", total / 1000);
        assert.deepEqual(await vpsState(e2e), before);
    });

    it("nginx and the tunnel run with the raised limits: worker_connections in nginx.conf's events block, and the open-files limit in nginx's workers and the tunnel's SSH session (set by pam_limits)", async () => {
        e2e.needUp();
        const r = await e2e.vm.ssh([
            "awk '/^events \\{/,/^\\}/' /etc/nginx/nginx.conf | grep -E '^[[:space:]]*worker_connections'",
            `for pid in $(pgrep -f '^nginx: worker') $(pgrep -u ${tunnelUser} -x sshd); do`,
            "    printf '%s: ' \"$(tr '\\0' ' ' < /proc/$pid/cmdline)\"; grep 'Max open files' /proc/$pid/limits",
            "done",
        ].join("\n"));
        assert.equal(r.status, 0, r.stderr);
        const [connections, ...processes] = r.stdout.trim().split("\n");
        assert.match(connections, new RegExp(`^\\s*worker_connections ${nginxWorkerConnections};$`));
        for (const kind of [/nginx: worker/, new RegExp(`sshd: ${tunnelUser}`)]) {
            assert.ok(processes.some((p) => kind.test(p)), `no ${kind} process: ${r.stdout}`);
        }
        for (const p of processes) assert.match(p, new RegExp(`Max open files\\s+${vpsOpenFiles}\\s+${vpsOpenFiles}\\s+files`), p);
        e2e.figures.line(`limits on the VM: ${connections.trim()} open files ${vpsOpenFiles} in ${processes.length} processes (nginx workers, the tunnel's session)`);
    });
}
