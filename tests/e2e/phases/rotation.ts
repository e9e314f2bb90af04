// Rotation: a pulumi up in the next window replaces only the key chain and what consumes it;
// the router keeps its pod.
import assert from "node:assert/strict";
import { it } from "node:test";
import { E2e, stack } from "../context";
import { headscaleCli, restarts, routerAuthKey, routerPod } from "../lib/cluster";
import { untilDeviceReachesLan } from "../lib/device";
import { changedResources, readOutputs } from "../lib/stack";
import { mustPulumi } from "../pulumiCli";

export function rotationPhase(e2e: E2e): void {
    it("rotation: a pulumi up in the next window replaces only the key chain; the old key is expired, the new one valid, the router not restarted", async () => {
        e2e.needUp();
        const routerBefore = await routerPod(e2e);
        const oldKeyId = String(e2e.outputs.routerKeyId);
        const keyBefore = await routerAuthKey(e2e);
        const started = Date.now();
        // The next window's date, for this run and every later one: time does not go back.
        e2e.project.setEnv("OVERLAY_TODAY", e2e.outputs.routerKeyNextRotation);
        const r = await mustPulumi(e2e.project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        const changed = changedResources(r.stdout);
        e2e.figures.report("rotation pulumi up", (Date.now() - started) / 1000, `OVERLAY_TODAY=${e2e.outputs.routerKeyNextRotation}`);
        for (const line of changed) e2e.figures.line(line);
        const names = [...new Set(changed.map((l) => l.split(" ")[2]))];
        assert.ok(names.length > 0, r.stdout.slice(-3000));
        const allowedChanges = /^(router-key-(mint|expiry)|user-keys-phone-(mint|expiry)|router-credentials|overlay-e2e)$/;
        assert.deepEqual(names.filter((n) => !allowedChanges.test(n)), [], changed.join("\n"));
        assert.ok(names.includes("router-key-mint") && names.includes("router-key-expiry") && names.includes("router-credentials"), changed.join("\n"));

        e2e.outputs = await readOutputs(e2e);
        assert.notEqual(String(e2e.outputs.routerKeyId), oldKeyId, "a new router key");
        const keys = JSON.parse((await headscaleCli(e2e, "preauthkeys", "list", "--output", "json")).stdout) as { id: number; expiration?: { seconds: number } }[];
        const expiry = (id: string) => (keys.find((k) => String(k.id) === id)?.expiration?.seconds ?? 0) * 1000;
        assert.ok(expiry(oldKeyId) <= Date.now(), "the old router key is expired");
        assert.ok(expiry(String(e2e.outputs.routerKeyId)) > Date.now(), "the new router key is valid");
        assert.notEqual(await routerAuthKey(e2e), keyBefore, "the router's Secret holds the new key");
        const routerAfter = await routerPod(e2e);
        assert.equal(routerAfter.metadata.uid, routerBefore.metadata.uid, "the same router pod");
        assert.deepEqual(restarts(routerAfter), restarts(routerBefore), "no container restarted");
        await untilDeviceReachesLan(e2e, 60_000);
    });
}
