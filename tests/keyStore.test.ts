// A key kept in a GitHub secret: the store command as the program runs it (`sh -c`, the key on
// stdin) against the gh stand-in (tests/helpers/gh-stand-in.sh: GitHub's API boundary), and the
// issue a failed scheduled run opens.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { notStoredMarker, storeSecretCommand } from "../components/keys/githubSecret";
import { failedRunIssue } from "../scripts/failedRunIssue";
import { installGhStandIn } from "./helpers/tools";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-key-store-"));
const bin = path.join(dir, "bin");
fs.mkdirSync(bin);
installGhStandIn(bin);
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const key = "hskey-auth-0123456789abcdef-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const target = { repository: "alice/overlay", name: "TAILNET_CI_AUTHKEY" };

function store(env: Record<string, string>, name = "run") {
    const standIn = path.join(dir, name);
    fs.mkdirSync(standIn);
    const r = spawnSync("sh", ["-c", storeSecretCommand(target)], {
        input: key,
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin`, GH_STAND_IN: standIn, ...env },
    });
    const read = (file: string) => (fs.existsSync(path.join(standIn, file)) ? fs.readFileSync(path.join(standIn, file), "utf8") : undefined);
    return { status: r.status, output: `${r.stdout}${r.stderr}`, calls: read("calls"), secret: read("secrets/TAILNET_CI_AUTHKEY"), token: read("secrets/TAILNET_CI_AUTHKEY.token") };
}

describe("storing a key in a GitHub secret", () => {
    it("writes exactly the key from stdin with gh secret set, under the writer token, and prints no key", () => {
        const r = store({ TAILNET_KEY_WRITER_TOKEN: "github_pat_writer", GH_TOKEN: "the-job-token" }, "stored");
        assert.equal(r.status, 0, r.output);
        assert.equal(r.calls, "secret set TAILNET_CI_AUTHKEY --repo alice/overlay --app actions\n");
        assert.equal(r.secret, key);
        assert.equal(r.token, "github_pat_writer", "gh gets the writer token, not whatever GH_TOKEN the job has");
        assert.doesNotMatch(r.output, new RegExp(key));
        assert.match(r.output, /overlay-key-store: stored the new key in the secret TAILNET_CI_AUTHKEY of alice\/overlay/);
        const mode = fs.statSync(path.join(dir, "stored", "secrets", "TAILNET_CI_AUTHKEY")).mode & 0o777;
        assert.equal(mode, 0o600);
    });

    it("without the token: fails with one line that names the secret, the token and that the old key stays valid; gh is not called", () => {
        const r = store({}, "no-token");
        assert.equal(r.status, 1);
        assert.equal(r.calls, undefined);
        assert.equal(r.output.trim(), `${notStoredMarker} in the secret TAILNET_CI_AUTHKEY of alice/overlay: TAILNET_KEY_WRITER_TOKEN is not set (a fine-grained token with Secrets: read and write on alice/overlay only). The old key stays valid until the new one is stored.`);
    });

    it("when gh fails (a token expired or without the permission): fails, saying so", () => {
        fs.writeFileSync(path.join(bin, "gh"), "#!/bin/sh\necho 'HTTP 403: Resource not accessible by personal access token' >&2\nexit 1\n", { mode: 0o755 });
        try {
            const r = store({ TAILNET_KEY_WRITER_TOKEN: "github_pat_expired" }, "gh-fails");
            assert.equal(r.status, 1);
            assert.match(r.output, /HTTP 403/);
            assert.match(r.output, new RegExp(`^${notStoredMarker} in the secret TAILNET_CI_AUTHKEY of alice/overlay: gh secret set failed`, "m"));
            assert.doesNotMatch(r.output, new RegExp(key));
        } finally {
            installGhStandIn(bin);
        }
    });
});

describe("the issue a failed scheduled run opens", () => {
    const outputs = {
        routerKeyExpires: "2027-04-02T04:17:09.000Z",
        githubSecretKeys: { ci: { repository: "alice/overlay", secret: "TAILNET_CI_AUTHKEY", keyId: "12", expires: "2027-03-03T04:17:11.000Z" } },
        userKeys: "[secret]",
    };
    const storeLine = `${notStoredMarker} in the secret TAILNET_CI_AUTHKEY of alice/overlay: TAILNET_KEY_WRITER_TOKEN is not set (…). The old key stays valid until the new one is stored.`;

    it("names the run and the router key's expiry", () => {
        assert.equal(failedRunIssue("https://github.com/alice/overlay/actions/runs/9", "error: something else\n", outputs), [
            "The scheduled `pulumi up` failed: https://github.com/alice/overlay/actions/runs/9",
            "",
            "The router key expires on 2027-04-02 04:17 UTC, or later if this run renewed it before it failed (stack output `routerKeyExpires`).",
            "",
        ].join("\n"));
    });

    it("when a key was not stored: which key the secret still holds, until when, and exactly what to do by then", () => {
        // pulumi prints the command's stderr indented, and again in the error, which also quotes
        // the command: the script's source, with the marker in its printf.
        const quoted = `  error: running "bash --norc --noprofile -c '... printf '\\''${notStoredMarker} in the secret %s of %s: %s\\n'\\'' \\"$secret\\" ...' store-github-secret alice/overlay TAILNET_CI_AUTHKEY":`;
        const log = `    ${storeLine}\n${quoted}\n  error: exit status 1: ${storeLine}\n`;
        const body = failedRunIssue("https://github.com/alice/overlay/actions/runs/9", log, outputs);
        assert.equal(body.split(storeLine).length - 1, 1, "the store's line, once");
        assert.equal(body.split(notStoredMarker).length - 1, 1, "not the quoted script");
        assert.match(body, /The secret `TAILNET_CI_AUTHKEY` of alice\/overlay still holds key 12, which expires on 2027-03-03 04:17 UTC\./);
        assert.match(body, /\*\*To do, before 2027-03-03:\*\* create a fine-grained personal access token with access to alice\/overlay only and one permission, "Secrets: Read and write", and save it as the repository secret `TAILNET_KEY_WRITER_TOKEN`/);
        assert.doesNotMatch(body, /hskey|\[secret\]/);
    });

    it("when the stack never stored a key there, says so instead of a date", () => {
        const body = failedRunIssue("u", storeLine, { routerKeyExpires: outputs.routerKeyExpires });
        assert.match(body, /The stack has not stored a key in the secret `TAILNET_CI_AUTHKEY` of alice\/overlay yet\./);
        assert.match(body, /\*\*To do:\*\* create a fine-grained/);
    });
});
