// Removes a subnet router that no longer runs (routerReplicas lowered) from headscale: waits, for
// a bounded time, until its node is offline (its pod is gone by then), deletes the node, then
// deletes the router's tailscale state Secret, so that a later scale-up registers afresh instead
// of presenting the key of a deleted node. Node, not bash: it reads headscale's JSON, and node is
// on the PATH wherever the Pulumi program runs.
//   node --input-type=module - NODE_NAME STATE_SECRET HEADSCALE_POD TIMEOUT_SECONDS KUBECTL_WORD...
import { execFileSync } from "node:child_process";

const [nodeName, stateSecret, pod, timeout, ...kubectl] = process.argv.slice(2);
if (!kubectl.length || !/^\d+$/.test(timeout ?? "")) fail("usage: remove-node.mjs NODE_NAME STATE_SECRET HEADSCALE_POD TIMEOUT_SECONDS KUBECTL_WORD...");

function fail(message) {
    process.stderr.write(`overlay: error: ${message}\n`);
    process.exit(1);
}

/** Runs a command; `what` names it in the error. */
function run(what, words) {
    try {
        return execFileSync(words[0], words.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    } catch (err) {
        return fail(`${what} failed: ${String(err.stderr || err.message).trim()}`);
    }
}

const headscale = (...args) => run(`headscale ${args.slice(0, 2).join(" ")}`, [...kubectl, "exec", pod, "-c", "headscale", "--", "headscale", ...args]);
const findNode = () => JSON.parse(headscale("nodes", "list", "--output", "json") || "[]")
    .find((n) => n.name === nodeName || (n.given_name ?? n.givenName) === nodeName);

const deadline = Date.now() + Number(timeout) * 1000;
let node = findNode();
while (node?.online && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    node = findNode();
}
if (node?.online) fail(`the node '${nodeName}' is still online in headscale after ${timeout}s: is a router of that name running elsewhere?`);
if (node) {
    headscale("nodes", "delete", "--identifier", String(node.id), "--force");
    console.log(`overlay: deleted the node '${nodeName}' (id ${node.id}) from headscale`);
} else {
    console.log(`overlay: headscale lists no node '${nodeName}'; nothing to delete`);
}
run(`kubectl delete secret ${stateSecret}`, [...kubectl, "delete", "secret", stateSecret, "--ignore-not-found"]);
console.log(`overlay: deleted the state Secret '${stateSecret}' if it existed`);
