// The key lifecycle's exact headscale commands against the real headscale 0.29.2, with a real
// tailscaled registering as the router. Everything runs in a network namespace of the test's
// own: the rendered config names documentation addresses that must not be reached for real.
// Only `kubectl exec ... --` is stood in for: its stand-in runs the rest of the line here.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { routerTag } from "../components/headscale/policy";
import { approveRoutesCommand, ensureUserCommand, expireKeyCommand, findNodeCommand, HeadscaleCli, mintKeyCommand } from "../components/keys/cli";
import { parseNodeRoutes, parsePreauthKey, parseUsers } from "../components/keys/headscaleOutput";
import { waitForNodeScript } from "../components/keys/routeApproval";
import { captureOutput, createNetns, freePort, Netns, waitUntil } from "./helpers/netns";
import { writeHeadscaleConfig } from "./helpers/headscaleServer";
import { toolBin } from "./helpers/tools";

const cli: HeadscaleCli = { kubeconfig: "", context: "", namespace: "overlay", pod: "headscale-0" };
const lanRoutes = ["192.168.1.0/24"];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-hscli-"));
const bin = path.join(dir, "bin");
let ns: Netns;
let httpPort = 0;
let env: NodeJS.ProcessEnv;
let routerKey = "";

/** Runs one of the program's command lines as local.Command would: `sh -c`, in the sandbox. */
function sh(command: string, stdin?: string) {
    return ns.run("sh", ["-c", command], { env, input: stdin, timeoutMs: 90_000 });
}

function headscale(...args: string[]) {
    return ns.run("headscale", args, { env, timeoutMs: 30_000 });
}

describe("the key lifecycle against the real headscale", () => {
    before(async () => {
        toolBin(bin, ["headscale", "tailscale", "tailscaled"]);

        ns = createNetns("ovl-hscli");
        ns.addDeadEndRoute();
        httpPort = await freePort();
        const config = writeHeadscaleConfig(dir, httpPort, { lanRoutes });
        env = { PATH: `${bin}:${process.env.PATH}`, HEADSCALE_CONFIG: config };
        const server = ns.start("headscale", ["serve"], env);
        const log = captureOutput(server);
        assert.ok(await waitUntil(() => ns.run("curl", ["-sf", `http://127.0.0.1:${httpPort}/health`]).status === 0, 30_000), `headscale did not start:\n${log()}`);
    });

    after(() => {
        ns?.destroy();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("mints the router key: tagged, reusable, 90 days, read by the project's parser", () => {
        const r = sh(mintKeyCommand(cli, { tags: [routerTag] }, { reusable: true, ephemeral: false, lifetimeDays: 90 }));
        assert.equal(r.status, 0, r.stderr);
        const key = parsePreauthKey(r.stdout);
        routerKey = key.key;
        assert.equal(key.reusable, true);
        assert.deepEqual(key.tags, [routerTag]);
        const days = (Date.parse(key.expiration) - Date.now()) / 86_400_000;
        assert.ok(days > 89.9 && days <= 90, `expires in ${days} days`);
    });

    it("creates a user if missing, and again finds it when it exists", () => {
        const first = sh(ensureUserCommand(cli, "alice"));
        const second = sh(ensureUserCommand(cli, "alice"));
        for (const r of [first, second]) assert.equal(r.status, 0, r.stderr);
        const id = parseUsers(first.stdout).find((u) => u.name === "alice")?.id;
        assert.ok(id);
        assert.equal(parseUsers(second.stdout).find((u) => u.name === "alice")?.id, id);
    });

    it("mints a user's key with the user's numeric id, then expires it", () => {
        const userId = parseUsers(sh(ensureUserCommand(cli, "alice")).stdout).find((u) => u.name === "alice")!.id;
        const r = sh(mintKeyCommand(cli, { userId }, { reusable: false, ephemeral: true, lifetimeDays: 7 }));
        assert.equal(r.status, 0, r.stderr);
        const key = parsePreauthKey(r.stdout);
        assert.equal(key.ephemeral, true);
        const expire = sh(expireKeyCommand(cli, key.id));
        assert.equal(expire.status, 0, expire.stderr);
        const listed = JSON.parse(headscale("preauthkeys", "list", "--output", "json").stdout) as { id: number; expiration: { seconds: number } }[];
        const after = listed.find((k) => String(k.id) === key.id);
        assert.ok(after && after.expiration.seconds * 1000 <= Date.now(), "the key is not expired");
        assert.equal(sh(expireKeyCommand(cli, key.id)).status, 0, "expiring twice is harmless (destroy after a manual expire)");
    });

    it("a real tailscaled registers with the router key; the approval step approves exactly the LAN routes", async () => {
        const state = path.join(dir, "tailscaled");
        fs.mkdirSync(state);
        const socket = path.join(state, "sock");
        const daemon = ns.start("tailscaled", ["--tun=userspace-networking", `--statedir=${state}`, `--socket=${socket}`, "--port=0"], env);
        const daemonLog = captureOutput(daemon);
        assert.ok(await waitUntil(() => fs.existsSync(socket), 15_000), `tailscaled did not start:\n${daemonLog()}`);
        const up = ns.run("tailscale", [`--socket=${socket}`, "up", `--login-server=http://127.0.0.1:${httpPort}`, `--authkey=${routerKey}`,
            `--advertise-routes=${lanRoutes.join(",")}`, "--hostname=home-router", "--timeout=30s"], { env, timeoutMs: 45_000 });
        assert.equal(up.status, 0, `${up.stderr}\n${daemonLog().slice(-2000)}`);

        const find = sh(findNodeCommand(cli, "home-router", 60), waitForNodeScript);
        assert.equal(find.status, 0, find.stderr);
        const node = parseNodeRoutes(find.stdout).find((n) => n.name === "home-router");
        assert.ok(node, find.stdout);
        assert.deepEqual(node.available, lanRoutes);

        // autoApprovers has approved them already; clear that to see the step do its part.
        assert.equal(headscale("nodes", "approve-routes", "--identifier", node.id, "--routes", "").status, 0);
        const cleared = parseNodeRoutes(headscale("nodes", "list-routes", "--output", "json").stdout)[0];
        assert.deepEqual(cleared.approved, []);
        for (let i = 0; i < 2; i++) {
            const approve = sh(approveRoutesCommand(cli, node.id, lanRoutes));
            assert.equal(approve.status, 0, approve.stderr);
            const listed = parseNodeRoutes(headscale("nodes", "list-routes", "--output", "json").stdout)[0];
            assert.deepEqual(listed.approved, lanRoutes, `after approval ${i + 1}`);
        }
    });

    it("fails clearly, within its bound, when the node never appears", () => {
        const started = Date.now();
        const r = sh(findNodeCommand(cli, "no-such-router", 5), waitForNodeScript);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /the node 'no-such-router' did not register with headscale within 5s/);
        assert.ok(Date.now() - started < 20_000);
    });
});

