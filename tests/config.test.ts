import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatProblems, validateConfig } from "../config";
import { badConfigs } from "./helpers/badConfigs";
import { exampleConfig, testSshKey } from "./helpers/stack";

describe("stack configuration", () => {
    it("accepts the example stack Pulumi.home.yaml", () => {
        const result = validateConfig(exampleConfig());
        assert.ok(result.ok, result.ok ? "" : formatProblems(result.problems));
        assert.equal(result.values.hostname, "headscale.example.com");
        assert.deepEqual(result.values.lanRoutes, ["192.168.1.0/24"]);
        assert.deepEqual(result.values.dnsSplit, { "home.arpa": ["192.168.1.1"] });
        assert.equal(result.values.userKeys[1].ephemeral, true);
    });

    it("fills in the documented defaults", () => {
        const result = validateConfig(exampleConfig({ unset: ["tunnelPort", "vpsSshPort", "routerKeyLifetimeDays", "routerKeyRotationDays", "tailnetIpv4Prefix", "tailnetIpv6Prefix", "tlsMode"] }));
        assert.ok(result.ok);
        assert.equal(result.values.tunnelPort, 8080);
        assert.equal(result.values.vpsSshPort, 22);
        assert.equal(result.values.routerKeyLifetimeDays, 90);
        assert.equal(result.values.routerKeyRotationDays, 60);
        assert.equal(result.values.tailnetIpv4Prefix, "100.64.0.0/10");
        assert.equal(result.values.tailnetIpv6Prefix, "fd7a:115c:a1e0::/48");
        assert.equal(result.values.tlsMode, "acme");
    });

    it("accepts every default as the real engine hands them over: in plain text, a secret key's empty default too", () => {
        // `pulumi preview` gives the program each default of Pulumi.yaml's config block as plain
        // config; tlsPrivateKey's "" must not count as a secret stored in plain text.
        const result = validateConfig(exampleConfig({ set: { tlsPrivateKey: "" } }));
        assert.ok(result.ok, result.ok ? "" : formatProblems(result.problems));
        assert.equal(result.values.tlsMode, "acme");
        const filled = validateConfig(exampleConfig({ set: { tlsPrivateKey: "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n" } }));
        assert.equal(filled.ok, false, "a key in plain text is refused");
        if (!filled.ok) assert.match(formatProblems(filled.problems), /overlay:tlsPrivateKey is stored in plain text/);
    });

    it(`has at least 20 bad configurations to reject (${badConfigs.length})`, () => {
        assert.ok(badConfigs.length >= 20);
    });

    for (const bad of badConfigs) {
        it(`rejects ${bad.title}, naming ${bad.key}`, () => {
            const result = validateConfig(exampleConfig(bad.variant));
            assert.equal(result.ok, false, "the configuration was accepted");
            if (result.ok) return;
            const named = result.problems.filter((p) => p.key === bad.key);
            assert.ok(named.length > 0, `no problem names ${bad.key}; got:\n${formatProblems(result.problems)}`);
            assert.ok(
                named.some((p) => p.message.startsWith(bad.key) && p.message.includes(bad.says)),
                `the message for ${bad.key} does not say "${bad.says}":\n${formatProblems(result.problems)}`,
            );
        });
    }

    it("reports every problem at once, numbered, each naming its key", () => {
        const result = validateConfig(exampleConfig({
            set: { hostname: "bad host", vpsSshPort: 0, lanRoutes: ["10.42.0.0/16"], routerKeyRotationDays: 120, tlsMode: "none" },
        }));
        assert.ok(!result.ok);
        const keys = result.problems.map((p) => p.key).sort();
        assert.deepEqual(keys, ["overlay:hostname", "overlay:lanRoutes[0]", "overlay:routerKeyRotationDays", "overlay:tlsMode", "overlay:vpsSshPort"]);
        const text = formatProblems(result.problems);
        assert.match(text, /^The stack configuration has 5 problems; nothing was created or changed:\n  1\. overlay:/);
        assert.match(text, /\n  5\. overlay:/);
    });

    it("never quotes a secret value in a message", () => {
        const result = validateConfig(exampleConfig({ set: { vpsSshPrivateKey: "hunter2-not-a-key" }, secret: ["vpsSshPrivateKey"] }));
        assert.ok(!result.ok);
        assert.doesNotMatch(formatProblems(result.problems), /hunter2/);
        const plain = validateConfig(exampleConfig({ set: { vpsSshPrivateKey: testSshKey } }));
        assert.ok(!plain.ok);
        assert.ok(!formatProblems(plain.problems).includes(testSshKey.split("\n")[1]));
    });

    it("quotes the offending value of a plain setting", () => {
        const result = validateConfig(exampleConfig({ set: { vpsSshPort: 70000 } }));
        assert.ok(!result.ok);
        assert.equal(result.problems[0].message, "overlay:vpsSshPort must be a whole number from 1 to 65535 (got 70000)");
    });

    it("never lets a cluster range through, however it is written", () => {
        // Every advertised route that touches a pod, service or tailnet range is refused.
        const clusterish = ["10.42.0.0/16", "10.42.128.0/17", "10.43.0.0/24", "10.0.0.0/8", "100.64.0.0/10", "100.100.100.0/24", "fd7a:115c:a1e0::/48", "::/0"];
        for (const route of clusterish) {
            const result = validateConfig(exampleConfig({ set: { lanRoutes: ["192.168.1.0/24", route] } }));
            assert.ok(!result.ok, `${route} was accepted as a LAN route`);
            assert.ok(result.problems.some((p) => p.key === "overlay:lanRoutes[1]"), `${route}: ${formatProblems(result.problems)}`);
        }
    });

    it("accepts IPv6 LAN routes and several disjoint subnets", () => {
        const result = validateConfig(exampleConfig({ set: { lanRoutes: ["192.168.1.0/24", "192.168.20.0/24", "2001:db8:1::/64"] } }));
        assert.ok(result.ok, result.ok ? "" : formatProblems(result.problems));
    });

    it("accepts a provided certificate with an encrypted key", () => {
        const result = validateConfig(exampleConfig({
            set: { tlsMode: "provided", acmeEmail: "", tlsCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", tlsPrivateKey: testSshKey },
            secret: ["tlsPrivateKey"],
        }));
        assert.ok(result.ok, result.ok ? "" : formatProblems(result.problems));
    });
});
