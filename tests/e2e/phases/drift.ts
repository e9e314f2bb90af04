// Drift on the VPS: four hand edits, each named and repaired by `pulumi up --refresh` alone
// (the first also named by a `pulumi preview --refresh` that changes nothing); no edit, no
// change; the VPS unreachable, an error and a state kept as it was.
import assert from "node:assert/strict";
import { it } from "node:test";
import { mustRun } from "../../helpers/netns";
import { E2e, stack } from "../context";
import { untilDeviceReachesLan } from "../lib/device";
import { seconds } from "../lib/figures";
import { changedResources, stateResources } from "../lib/stack";
import { appliedState, driftEdits, driftSummary, remoteCommands, rerun, vpsState } from "../lib/vps";
import { vpsAddress } from "../network";
import { mustPulumi } from "../pulumiCli";

export function driftPhase(e2e: E2e): void {
    // One edit at a time. The first shows that `pulumi preview --refresh` names the drift and
    // repairs and saves nothing; each then shows that `pulumi up --refresh` names it and repairs it.
    driftEdits.forEach((drift, i) => {
        const previewed = i === 0;
        it(`drift: ${drift.edit}: ${previewed ? "preview --refresh names the step and changes nothing; " : ""}up --refresh names the ${drift.step} step, applies it again and no other, the VM is back as applied, and the device reaches the LAN`, async () => {
            e2e.needUp();
            // What the first pulumi up left on the VM (the build phase's refresh found no drift in it).
            e2e.applied ??= await appliedState(e2e);
            const applied = e2e.applied;
            const edited = await e2e.vm.ssh(drift.script);
            assert.equal(edited.status, 0, edited.stderr);
            assert.notDeepEqual(await appliedState(e2e), applied, "the edit changed the VM");
            if (drift.step === "nginx") assert.notEqual((await e2e.vm.ssh("nginx -t")).status, 0, "the edited site fails nginx -t");
            const namedIn = (output: string) => [...new Set(output.split("\n").map((l) => /overlay: the VPS step (.*)$/.exec(l)?.[1]).filter((l): l is string => !!l))];

            if (previewed) {
                const preview = await mustPulumi(e2e.project, ["preview", "--stack", stack, "--refresh"], { timeoutMs: 300_000 });
                const named = namedIn(preview.stdout);
                assert.ok(named.length > 0 && named.every((l) => l.startsWith(`${drift.step} has drifted: `)), preview.stdout.slice(-4000));
                assert.ok(named.some((l) => drift.names.test(l)), named.join("\n"));
                assert.match(preview.stdout, new RegExp(`~ +pulumi-nodejs:dynamic:Resource vps-${drift.step}-state update\\b`));
                assert.match(preview.stdout, /Resources:\n\s+~ 1 to update\n/, preview.stdout.slice(-3000));
                assert.notDeepEqual(await appliedState(e2e), applied, "a preview repairs nothing");
                const saved = (await stateResources(e2e)).find((r) => r.urn.endsWith(`::vps-${drift.step}-state`));
                assert.deepEqual(saved?.outputs.drift, [], "a preview saves no refreshed state");
            }

            const started = Date.now();
            const up = await mustPulumi(e2e.project, ["up", "--stack", stack, "--refresh", "--yes"], { timeoutMs: 300_000 });
            const took = (Date.now() - started) / 1000;
            const named = namedIn(up.stdout);
            assert.ok(named.length > 0 && named.every((l) => l.startsWith(`${drift.step} has drifted: `)), up.stdout.slice(-4000));
            assert.ok(named.some((l) => drift.names.test(l)), named.join("\n"));
            assert.deepEqual(changedResources(up.stdout), [`~ pulumi-nodejs:dynamic:Resource vps-${drift.step}-state updated`], up.stdout.slice(-4000));
            assert.deepEqual(await appliedState(e2e), applied, "the VM is back as the first pulumi up left it");
            await untilDeviceReachesLan(e2e, 60_000);
            const summary = await driftSummary(e2e, up.stdout);
            assert.match(summary, new RegExp(`^- \\*\\*${drift.step}\\*\\* \\(repaired: this run applied the step again\\):$`, "m"), summary);
            e2e.figures.report(`drift repaired, ${drift.edit}`, took, `up --refresh named ${named.map((l) => `"${l}"`).join(", ")}`);
        });
    });

    it("drift: with no edit, pulumi up --refresh changes nothing and applies nothing; timed against a no-op pulumi up", async () => {
        e2e.needUp();
        const { project } = e2e;
        const before = await vpsState(e2e);
        const upStarted = Date.now();
        const plain = await mustPulumi(project, ["up", "--stack", stack, "--yes"], { timeoutMs: 300_000 });
        const upMs = Date.now() - upStarted;
        const refreshStarted = Date.now();
        const refreshed = await mustPulumi(project, ["up", "--stack", stack, "--refresh", "--yes"], { timeoutMs: 300_000 });
        const refreshMs = Date.now() - refreshStarted;
        for (const r of [plain, refreshed]) {
            assert.match(r.stdout, /Resources:\n\s+\d+ unchanged\n/, r.stdout.slice(-3000));
            assert.deepEqual(changedResources(r.stdout), []);
        }
        assert.doesNotMatch(refreshed.stdout, /has drifted/);
        assert.equal(await driftSummary(e2e, refreshed.stdout), "No drift on the VPS: every step matched what it applied.\n");
        // As the rotation workflow runs it: one refresh, no preview first.
        const skipStarted = Date.now();
        const skipped = await mustPulumi(project, ["up", "--stack", stack, "--refresh", "--skip-preview", "--yes"], { timeoutMs: 300_000 });
        const skipMs = Date.now() - skipStarted;
        assert.deepEqual(changedResources(skipped.stdout), []);
        // Where the time goes: the VPS steps' checks alone, as the state resources run them, and one by one by hand.
        const states = (await stateResources(e2e)).filter((r) => r.type === "pulumi-nodejs:dynamic:Resource").map((r) => r.urn as string);
        const vpsStarted = Date.now();
        await mustPulumi(project, ["refresh", "--stack", stack, "--skip-preview", "--yes", ...states.flatMap((u) => ["--target", u])], { timeoutMs: 300_000 });
        const vpsMs = Date.now() - vpsStarted;
        const checks: string[] = [];
        for (const step of await remoteCommands(e2e)) {
            const r = await rerun(e2e, step, step.inputs.create.replace(/ apply$/, " check"));
            assert.equal(r.status, 0, `${step.name}: ${r.stderr}`);
            assert.equal(r.stdout, "", `${step.name} found drift: ${r.stdout}`);
            checks.push(`${step.name} ${seconds(r.ms / 1000)}`);
        }
        // Same files, same table, and the same service processes: no step ran its apply.
        assert.deepEqual(await vpsState(e2e), before);
        e2e.figures.report("no-edit pulumi up --refresh", refreshMs / 1000, `no-op pulumi up ${seconds(upMs / 1000)}, ratio ${(refreshMs / upMs).toFixed(2)}x`);
        e2e.figures.report("pulumi up --refresh --skip-preview (the rotation workflow's run)", skipMs / 1000, `ratio ${(skipMs / upMs).toFixed(2)}x to the no-op up`);
        e2e.figures.report(`pulumi refresh --skip-preview of the ${states.length} VPS state resources alone`, vpsMs / 1000);
        e2e.figures.line(`each step's check over its own SSH connection to the VM (TCG): ${checks.join(", ")}`);
    });

    it("bad input: the VPS unreachable during refresh: an error naming the host; the state keeps every step, and nothing is deleted or re-created", async () => {
        e2e.needUp();
        const { project, world } = e2e;
        const resources = async () => (await stateResources(e2e)).filter((r) => /^(command:remote:Command|pulumi-nodejs:dynamic:Resource)$/.test(r.type))
            .map((r) => JSON.stringify({ urn: r.urn, id: r.id, outputs: r.outputs })).sort();
        const before = await resources();
        const vpsBefore = await vpsState(e2e);
        // New SSH connections from home to the VPS are refused; the router's open tunnel stays.
        mustRun(world.home, "nft", ["-f", "-"], `table inet e2e_vps_unreachable {\n  chain output {\n    type filter hook output priority 0;\n    ip daddr ${vpsAddress} tcp dport 22 ct state new reject with tcp reset\n  }\n}\n`);
        try {
            for (const args of [["refresh", "--yes"], ["up", "--refresh", "--yes"]]) {
                const r = await project.run([...args, "--stack", stack], { timeoutMs: 300_000 });
                const text = `${r.stdout}\n${r.stderr}`;
                assert.notEqual(r.status, 0, `pulumi ${args.join(" ")} passed with the VPS unreachable`);
                const address = vpsAddress.replace(/\./g, "\\.");
                assert.match(text, new RegExp(`could not reach the VPS at root@${address}:22 to check the step [a-z-]+: ssh: connect to host ${address} port 22: Connection refused`), text.slice(-3000));
                assert.deepEqual(changedResources(r.stdout), [], `pulumi ${args.join(" ")} changed something`);
                if (args[0] === "refresh") e2e.figures.line(`VPS unreachable, pulumi refresh said: ${text.split("\n").find((l) => /error: .*could not reach the VPS/.test(l))?.trim()}`);
            }
        } finally {
            world.home.run("nft", ["delete", "table", "inet", "e2e_vps_unreachable"]);
        }
        assert.deepEqual(await resources(), before, "every VPS step and its state, as they were");
        assert.deepEqual(await vpsState(e2e), vpsBefore);
        const preview = await project.run(["preview", "--stack", stack, "--expect-no-changes"], { timeoutMs: 300_000 });
        assert.equal(preview.status, 0, `a change after the failed refresh:\n${preview.stdout.slice(-4000)}`);
    });
}
