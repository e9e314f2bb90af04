// wait-router.sh, the router's wait until ready, against a kubectl stand-in that answers as
// the API server would for a router that becomes ready, one whose image cannot be pulled, and
// one whose first pull fails and the next succeeds.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { waitRouterScript } from "../components/router";

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-wait-router-"));

/**
 * A kubectl whose `rollout status` succeeds from the READY_AT-th call on (never if 0), and
 * whose `get pods` reports the tunnel container waiting for its image until PULL_FIXED_AT
 * calls have been made (always if 0). It logs its calls.
 */
function standIn(readyAt: number, pullFixedAt: number): string {
    const file = path.join(scratch, `kubectl-${readyAt}-${pullFixedAt}`);
    fs.writeFileSync(file, `#!/usr/bin/env bash
set -euo pipefail
calls=$(( $(cat "$0.calls" 2>/dev/null || echo 0) + 1 )); echo "$calls" > "$0.calls"
printf '%s\\n' "$*" >> "$0.log"
for word in "$@"; do
    case $word in
    rollout) [[ ${readyAt} -gt 0 && $calls -ge ${readyAt} ]] && exit 0; echo 'Waiting for deployment "subnet-router" rollout to finish' >&2; exit 1 ;;
    pods)
        if [[ ${pullFixedAt} -eq 0 || $calls -lt ${pullFixedAt} ]]; then
            printf 'tailscale\\tghcr.io/tailscale/tailscale:v1.102.5\\t\\t\\ntunnel\\tdocker.io/example/missing:1\\tImagePullBackOff\\tBack-off pulling image "docker.io/example/missing:1"\\n'
        fi
        exit 0 ;;
    esac
done
exit 2
`, { mode: 0o755 });
    return file;
}

function waitRouter(kubectl: string, timeoutSeconds: number, graceSeconds: number) {
    const started = Date.now();
    const r = spawnSync("bash", ["-s", "--", "subnet-router", "app.kubernetes.io/name=subnet-router", String(timeoutSeconds), String(graceSeconds), kubectl, "--namespace=overlay"],
        { input: waitRouterScript, encoding: "utf8", timeout: 60_000 });
    return { status: r.status, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
}

describe("wait-router.sh", () => {
    after(() => fs.rmSync(scratch, { recursive: true, force: true }));

    it("returns once the router's rollout is done", () => {
        const r = waitRouter(standIn(3, 1), 30, 4);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /overlay: subnet-router is ready/);
    });

    it("fails after the grace period when an image cannot be pulled, naming the image, the container and the kubelet's reason", () => {
        const r = waitRouter(standIn(0, 0), 60, 4);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /overlay: error: the router subnet-router cannot start: the image docker\.io\/example\/missing:1 of its tunnel container cannot be pulled \(ImagePullBackOff\): Back-off pulling image "docker\.io\/example\/missing:1"/);
        assert.ok(r.seconds >= 4 && r.seconds < 20, `failed after ${r.seconds} s (grace 4 s, timeout 60 s)`);
    });

    it("waits on through a pull that fails once and then succeeds", () => {
        const kubectl = standIn(8, 4);
        const r = waitRouter(kubectl, 60, 10);
        assert.equal(r.status, 0, r.stderr);
    });

    it("fails at its timeout when the router is never ready, saying where to look", () => {
        const r = waitRouter(standIn(0, 1), 3, 2);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /the router subnet-router was not ready after 3 s; `kubectl describe pods -l app\.kubernetes\.io\/name=subnet-router` in its namespace says why/);
    });
});
