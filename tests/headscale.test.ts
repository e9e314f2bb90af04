// headscale's config and policy: what the renderers write, and what the real headscale
// 0.29.2 makes of it (configtest, then a short-lived server on loopback).
import assert from "node:assert/strict";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import { HeadscaleConfigArgs, headscaleConfig, renderHeadscaleConfig } from "../components/headscale/config";
import { policy, renderPolicy } from "../components/headscale/policy";
import { freePort, waitUntil } from "./helpers/netns";
import { requireTool } from "./helpers/tools";

const args: HeadscaleConfigArgs = {
    hostname: "headscale.example.com",
    tailnetIpv4Prefix: "100.64.0.0/10",
    tailnetIpv6Prefix: "fd7a:115c:a1e0::/48",
    vpsIpv4: "203.0.113.10",
    vpsIpv6: "2001:db8::10",
    trustedProxies: ["10.42.0.0/16"],
    logLevel: "info",
    magicDns: true,
    dnsBaseDomain: "tailnet.internal",
    dnsNameservers: [],
    dnsSplit: { "home.arpa": ["192.168.1.1"] },
    haProbe: { intervalSeconds: 10, timeoutSeconds: 5 },
};
const policyArgs = { lanRoutes: ["192.168.1.0/24", "2001:db8:1::/64"], extraTags: ["tag:ci"] };

/** Every key path of a YAML document, e.g. "derp.server.region_id". */
function keyPaths(value: unknown, prefix = ""): string[] {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return [prefix];
    return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

describe("headscale config.yaml", () => {
    const config = YAML.parse(renderHeadscaleConfig(args));

    it("is YAML with the settings the design asks for", () => {
        assert.equal(config.server_url, "https://headscale.example.com");
        assert.equal(config.listen_addr, "0.0.0.0:8080");
        assert.equal(config.grpc_listen_addr, "127.0.0.1:50443");
        assert.equal(config.noise.private_key_path, "/var/lib/headscale/noise_private.key");
        assert.deepEqual(config.prefixes, { v4: "100.64.0.0/10", v6: "fd7a:115c:a1e0::/48", allocation: "sequential" });
        assert.deepEqual(config.database, { type: "sqlite", sqlite: { path: "/var/lib/headscale/db.sqlite", write_ahead_log: true, wal_autocheckpoint: 1000 } });
        const derp = config.derp.server;
        assert.equal(derp.enabled, true);
        assert.equal(derp.region_id, 999);
        assert.equal(derp.region_code, "headscale");
        assert.equal(derp.verify_clients, true);
        assert.equal(derp.stun_listen_addr, "0.0.0.0:3478");
        assert.equal(derp.automatically_add_embedded_derp_region, true);
        assert.equal(derp.ipv4, "203.0.113.10");
        assert.equal(derp.ipv6, "2001:db8::10");
        assert.deepEqual(config.derp.urls, [], "no third-party DERP");
        assert.equal(config.dns.magic_dns, true);
        assert.equal(config.dns.base_domain, "tailnet.internal");
        assert.deepEqual(config.dns.nameservers, { global: [], split: { "home.arpa": ["192.168.1.1"] } });
        assert.equal(config.dns.override_local_dns, false, "no global resolvers: devices keep their own");
        assert.equal(config.log.level, "info");
        assert.deepEqual(config.policy, { mode: "file", path: "/etc/headscale/policy.hujson" });
        assert.equal(config.unix_socket, "/var/run/headscale/headscale.sock");
        assert.equal(config.unix_socket_permission, "0770");
        assert.deepEqual(config.trusted_proxies, ["10.42.0.0/16"]);
    });

    it("overrides local DNS only when global resolvers are given", () => {
        const c = headscaleConfig({ ...args, dnsNameservers: ["192.168.1.1"] }) as any;
        assert.equal(c.dns.override_local_dns, true);
        assert.deepEqual(c.dns.nameservers.global, ["192.168.1.1"]);
    });

    it("leaves out DERP IPv6 when the VPS has none", () => {
        assert.equal((headscaleConfig({ ...args, vpsIpv6: "" }) as any).derp.server.ipv6, "none");
    });

    it("holds no key that 0.29 removed or rejects", () => {
        const removed = [
            "dns_config", "acl_policy_path", "acl_policy", "randomize_client_port", "oidc.expiry", "ip_prefixes",
            "db_type", "db_path", "private_key_path", "ephemeral_node_inactivity_timeout", "node_update_check_interval",
            "dns.use_username_in_magic_dns", "derp.server.stun", "policy.acl_policy_path",
        ];
        const paths = keyPaths(config);
        for (const key of removed) assert.ok(!paths.some((p) => p === key || p.startsWith(`${key}.`)), `renders the removed key ${key}`);
    });

    it("renders the same bytes for the same arguments", () => {
        assert.equal(renderHeadscaleConfig(args), renderHeadscaleConfig({ ...args }));
        assert.equal(renderPolicy(policyArgs), renderPolicy({ ...policyArgs }));
    });
});

describe("headscale policy", () => {
    const p = policy(policyArgs);

    it("owns every tag it uses", () => {
        const used = new Set<string>();
        const collect = (list: string[]) => list.filter((x) => x.startsWith("tag:")).forEach((t) => used.add(t.split(":").slice(0, 2).join(":")));
        for (const acl of p.acls) { collect(acl.src); collect(acl.dst); }
        for (const approvers of Object.values(p.autoApprovers.routes)) collect(approvers);
        for (const tag of used) assert.ok(tag in p.tagOwners, `${tag} has no tagOwners entry`);
        assert.deepEqual(Object.keys(p.tagOwners), ["tag:ci", "tag:router"]);
    });

    it("auto-approves exactly the LAN routes for tag:router", () => {
        assert.deepEqual(p.autoApprovers.routes, { "192.168.1.0/24": ["tag:router"], "2001:db8:1::/64": ["tag:router"] });
    });

    it("lets nothing reach the router itself", () => {
        for (const acl of p.acls) assert.ok(!acl.dst.some((d) => d.startsWith("tag:router")));
    });
});

describe("the real headscale 0.29.2", () => {
    const headscale = requireTool("headscale");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-headscale-"));
    let server: ChildProcess | undefined;
    let configFile = "";
    let httpPort = 0;

    before(async () => {
        const [http, metrics, grpc, stun] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
        httpPort = http;
        const paths = { config: path.join(dir, "etc"), data: path.join(dir, "lib"), run: path.join(dir, "run") };
        for (const d of Object.values(paths)) fs.mkdirSync(d, { recursive: true });
        // The rendered config, with only its paths and listen addresses moved to the test's.
        configFile = path.join(paths.config, "config.yaml");
        fs.writeFileSync(configFile, renderHeadscaleConfig({ ...args, paths, listen: { host: "127.0.0.1", ports: { http, metrics, grpc, stun } } }));
        fs.writeFileSync(path.join(paths.config, "policy.hujson"), renderPolicy(policyArgs));
    });

    after(() => {
        server?.kill("SIGKILL");
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("accepts the config and the policy (configtest), without deprecation warnings", () => {
        const result = spawnSync(headscale, ["configtest", "-c", configFile], { encoding: "utf8", timeout: 60_000 });
        const output = result.stdout + result.stderr;
        assert.equal(result.status, 0, output);
        assert.doesNotMatch(output, /deprecat|unknown|unused|WRN/i, output);
    });

    it("serves /health with it and checks the policy through its socket", async () => {
        server = spawn(headscale, ["serve", "-c", configFile], { stdio: ["ignore", "pipe", "pipe"] });
        let log = "";
        server.stdout?.on("data", (d) => (log += d));
        server.stderr?.on("data", (d) => (log += d));
        const healthy = await waitUntil(async () => (await fetch(`http://127.0.0.1:${httpPort}/health`)).ok, 30_000);
        assert.ok(healthy, `headscale did not become healthy:\n${log}`);

        const check = spawnSync(headscale, ["-c", configFile, "policy", "check", "-f", path.join(dir, "etc", "policy.hujson")], { encoding: "utf8", timeout: 30_000 });
        assert.equal(check.status, 0, check.stdout + check.stderr);

        // The check is real: a policy using an unowned tag is refused.
        const bad = path.join(dir, "bad.hujson");
        const unowned = { ...policy(policyArgs), tagOwners: { "tag:router": [] } };
        fs.writeFileSync(bad, JSON.stringify(unowned));
        const refused = spawnSync(headscale, ["-c", configFile, "policy", "check", "-f", bad], { encoding: "utf8", timeout: 30_000 });
        assert.notEqual(refused.status, 0, "headscale accepted a policy with an unowned tag");
    });
});


