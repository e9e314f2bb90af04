// Reading headscale's output (both shapes), and the rotation clock.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { addDays, isDate, rotationWindow } from "../config/clock";
import { HeadscaleOutputError, parseNodeRoutes, parsePreauthKey, parseUsers, redactKeys } from "../components/keys/headscaleOutput";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "fixtures", "headscale", name), "utf8");

describe("headscale output", () => {
    it("reads a 0.29 router key (snake_case, {seconds,nanos}, false fields left out)", () => {
        const k = parsePreauthKey(fixture("0.29-preauthkey-router.json"));
        assert.match(k.id, /^\d+$/);
        assert.match(k.key, /^hskey-auth-/);
        assert.equal(k.reusable, true);
        assert.equal(k.ephemeral, false);
        assert.deepEqual(k.tags, ["tag:router"]);
        assert.match(k.expiration, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    });

    it("reads a 0.29 user key, whose JSON starts with the user and its own id", () => {
        const text = fixture("0.29-preauthkey-user.json");
        const k = parsePreauthKey(text);
        assert.equal(k.id, String(JSON.parse(text).id));
        assert.notEqual(k.id, String(JSON.parse(text).user.id));
        assert.equal(k.ephemeral, true);
        assert.equal(k.reusable, false);
    });

    it("reads a 0.30 key (camelCase, RFC 3339, string ids)", () => {
        const k = parsePreauthKey(fixture("0.30-preauthkey-router.json"));
        assert.equal(k.id, "12");
        assert.equal(k.expiration, "2027-02-27T05:00:00.123Z");
        assert.deepEqual(k.tags, ["tag:router"]);
    });

    it("converts 0.29's seconds and nanos exactly", () => {
        const k = parsePreauthKey('{"id": 3, "key": "hskey-auth-0123456789abcdef", "expiration": {"seconds": 1803704886, "nanos": 24686435}}');
        assert.equal(k.expiration, "2027-02-27T05:08:06.024Z");
    });

    it("reads users and node routes in both shapes", () => {
        assert.deepEqual(parseUsers(fixture("0.29-users-list.json"))[0].name, "alice");
        assert.deepEqual(parseUsers(fixture("0.30-users-list.json")), [{ id: "1", name: "alice" }, { id: "2", name: "bob" }]);
        assert.deepEqual(parseNodeRoutes(fixture("0.29-nodes-list-routes-empty.json")), []);
        assert.deepEqual(parseNodeRoutes(fixture("0.30-nodes-list-routes.json")), [
            { id: "5", name: "home-router", givenName: "home-router", approved: [], available: ["192.168.1.0/24"] },
        ]);
    });

    const malformed: [string, string][] = [
        ["not JSON", "Error: could not connect to headscale"],
        ["empty", ""],
        ["a list", "[]"],
        ["no key", '{"id": 1, "expiration": {"seconds": 1}}'],
        ["no id", '{"key": "hskey-auth-0123456789abcdef0123", "expiration": {"seconds": 1}}'],
        ["an id that is not a number", '{"id": "one", "key": "hskey-auth-0123456789abcdef0123", "expiration": {"seconds": 1}}'],
        ["no expiration", '{"id": 1, "key": "hskey-auth-0123456789abcdef0123"}'],
        ["an unreadable expiration", '{"id": 1, "key": "hskey-auth-0123456789abcdef0123", "expiration": "soon"}'],
    ];
    for (const [what, text] of malformed) {
        it(`refuses ${what} with a clear message that never shows the key`, () => {
            assert.throws(() => parsePreauthKey(text), (err: Error) => {
                assert.ok(err instanceof HeadscaleOutputError);
                assert.match(err.message, /^Unexpected output from `headscale preauthkeys create` \(/);
                assert.doesNotMatch(err.message, /0123456789abcdef0123/);
                return true;
            });
        });
    }

    it("redacts keys wherever they stand", () => {
        const text = redactKeys('{"key": "hskey-auth-abc", "other": "x hskey-auth-zzz y"}');
        assert.equal(text, '{"key": "[redacted]", "other": "x [redacted] y"}');
    });
});

describe("the rotation clock", () => {
    it("keeps one window for every day of it, and moves on at its end", () => {
        const w = rotationWindow("2026-11-29", 60);
        assert.equal(addDays(w.start, 60), w.next);
        for (let d = 0; d < 60; d++) assert.deepEqual(rotationWindow(addDays(w.start, d), 60), w);
        assert.equal(rotationWindow(w.next, 60).start, w.next);
        assert.ok(w.start <= "2026-11-29" && "2026-11-29" < w.next);
    });

    it("accepts only real dates", () => {
        for (const ok of ["2026-11-29", "2028-02-29"]) assert.ok(isDate(ok), ok);
        for (const bad of ["2027-02-29", "2027-13-01", "27-01-01", "2027-1-1", "today"]) assert.ok(!isDate(bad), bad);
    });
});
