// CIDR arithmetic behind the "never advertise a cluster range" rule, checked against plain
// integer ranges on random prefixes (a fixed seed, a bounded count).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalCidr, cidrContains, cidrsOverlap, isCanonical, parseCidr } from "../config/net";

function random(seed: number): () => number {
    return () => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return seed;
    };
}

function range(text: string): [number, number] {
    const [address, length] = text.split("/");
    const value = address.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
    const size = 2 ** (32 - Number(length));
    const start = value - (value % size);
    return [start, start + size - 1];
}

describe("CIDR arithmetic", () => {
    it("agrees with integer ranges on 2000 random IPv4 pairs", () => {
        const next = random(42);
        // Prefixes near each other, so that overlaps are common.
        const cidr = () => `10.${next() % 4}.${next() % 256}.${next() % 256}/${8 + (next() % 25)}`;
        for (let i = 0; i < 2000; i++) {
            const [a, b] = [parseCidr(cidr()), parseCidr(cidr())];
            assert.ok(a && b);
            const [as, ae] = range(a.text);
            const [bs, be] = range(b.text);
            assert.equal(cidrsOverlap(a, b), as <= be && bs <= ae, `${a.text} vs ${b.text}`);
            assert.equal(cidrsOverlap(b, a), cidrsOverlap(a, b), "overlap is symmetric");
            assert.equal(cidrContains(a, b), as <= bs && be <= ae, `${a.text} contains ${b.text}`);
            assert.equal(canonicalCidr(a), `${[24, 16, 8, 0].map((s) => (as / 2 ** s) % 256 | 0).join(".")}/${a.prefixLength}`);
        }
    });

    it("handles IPv6 and never mixes families", () => {
        const tailnet = parseCidr("fd7a:115c:a1e0::/48")!;
        assert.ok(cidrsOverlap(tailnet, parseCidr("fd7a:115c:a1e0:ab::/64")!));
        assert.ok(!cidrsOverlap(tailnet, parseCidr("fd7a:115c:a1e1::/48")!));
        assert.ok(!cidrsOverlap(parseCidr("0.0.0.0/0")!, parseCidr("::/0")!));
        assert.ok(isCanonical(parseCidr("2001:db8::/32")!));
        assert.ok(!isCanonical(parseCidr("2001:db8::1/32")!));
    });

    it("rejects what is not a CIDR", () => {
        for (const text of ["192.168.1.0", "192.168.1.0/33", "10.1/8", "banana/8", "::/129", ""]) {
            assert.equal(parseCidr(text), undefined, text);
        }
    });
});
