// The whole overlay in a box, driven only by the real `pulumi` CLI. A Debian 12 VM is the VPS;
// a real Kubernetes control plane and real Nodes (containerd, kubelet, kube-proxy, CoreDNS and
// kube-router's network-policy controller, as k3s runs them) run in a "home" namespace, each
// pod from an image rebuilt as its upstream defines it; a LAN namespace holds a service on the
// advertised subnet; a roaming device in its own namespace joins with a key the program
// minted. Bad input first, then the stack is built, checked, faulted, drifted, rotated, backed
// up and restored, doubled, exported and destroyed: one phase per module (phases/), one
// context (context.ts) set up and torn down here. Bounded: 30 minutes in all.
import { after, before, describe } from "node:test";
import { boundMs, E2e } from "./context";
import { backupsPhase } from "./phases/backups";
import { badInputPhase } from "./phases/badInput";
import { buildPhase } from "./phases/build";
import { driftPhase } from "./phases/drift";
import { faultsPhase } from "./phases/faults";
import { haPhase } from "./phases/ha";
import { rotationPhase } from "./phases/rotation";
import { teardownPhase } from "./phases/teardown";

describe("the overlay end to end: the Pulumi CLI, a real control plane and Nodes, a Debian VM as the VPS, real headscale and Tailscale", { timeout: boundMs }, () => {
    const e2e = new E2e();
    const watchdog = setTimeout(() => {
        console.error(`e2e: the ${boundMs / 60_000}-minute bound is reached; stopping`);
        void e2e.tearDown().finally(() => process.exit(1));
    }, boundMs);
    watchdog.unref();

    before(() => e2e.setUp(), { timeout: 600_000 });

    after(async () => {
        if (process.env.OVERLAY_E2E_KEEP && e2e.world) {
            // For a person debugging: keep everything up a while (the watchdog still applies).
            console.log(`kept for 10 minutes: namespaces ${Object.values(e2e.world).filter((n) => typeof n === "object").map((n: any) => n.name).join(" ")}; run directory ${e2e.run}`);
            await new Promise((resolve) => setTimeout(resolve, 600_000));
        }
        clearTimeout(watchdog);
        await e2e.tearDown();
        // Everything the harness started is gone: whatever still holds the event loop is a leak
        // of the harness's own, which must not keep a finished run alive until CI's limit.
        setTimeout(() => {
            console.error(`e2e: the event loop is still held 60 s after tear-down, by: ${process.getActiveResourcesInfo().join(", ")}; exiting`);
            process.exit(1);
        }, 60_000).unref();
    }, { timeout: 660_000 });

    badInputPhase(e2e);
    buildPhase(e2e);
    faultsPhase(e2e);
    driftPhase(e2e);
    rotationPhase(e2e);
    backupsPhase(e2e);
    haPhase(e2e);
    teardownPhase(e2e);
});
