// nginx and coturn on the VPS, with the rendered files under the real daemons, in a network
// namespace of the test's own (its own 80, 443 and 3478, and the VPS's addresses on its lo).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { renderTurnserverConf } from "../components/vps/coturn";
import { renderFirewall } from "../components/vps/firewall";
import { renderNginxSite } from "../components/vps/nginx";
import { captureOutput, createNetns, Netns, waitUntil } from "./helpers/netns";
import { requireTool } from "./helpers/tools";

const hostname = "headscale.example.com";
const tunnelPort = 8080;
const helpers = path.join(__dirname, "helpers");

describe("nginx in front of headscale", () => {
    let ns: Netns;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-nginx-"));
    const cert = path.join(dir, "cert.pem");
    const key = path.join(dir, "key.pem");
    const webroot = path.join(dir, "acme");
    const conf = path.join(dir, "nginx.conf");

    const curl = (...args: string[]) => ns.run("curl", ["-s", "--max-time", "5", ...args], { timeoutMs: 10_000 });

    before(async () => {
        requireTool("nginx");
        requireTool("curl");
        const made = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", key, "-out", cert, "-subj", `/CN=${hostname}`, "-addext", `subjectAltName=DNS:${hostname}`], { encoding: "utf8" });
        assert.equal(made.status, 0, made.stderr);
        fs.mkdirSync(path.join(webroot, ".well-known", "acme-challenge"), { recursive: true });
        fs.writeFileSync(path.join(webroot, ".well-known", "acme-challenge", "token123"), "token123.thumbprint");
        fs.writeFileSync(path.join(dir, "site"), renderNginxSite({ hostname, tunnelPort, tls: { certificate: cert, privateKey: key }, acmeWebroot: webroot }));
        // Only the main file is the test's: it includes the rendered site as Debian's nginx.conf does.
        fs.writeFileSync(conf, [
            "user root;",
            `pid ${dir}/nginx.pid;`,
            `error_log ${dir}/error.log info;`,
            "events {}",
            "http {",
            "    include /etc/nginx/mime.types;",
            "    access_log off;",
            `    client_body_temp_path ${dir}/body;`,
            `    proxy_temp_path ${dir}/proxy;`,
            `    fastcgi_temp_path ${dir}/fastcgi;`,
            `    uwsgi_temp_path ${dir}/uwsgi;`,
            `    scgi_temp_path ${dir}/scgi;`,
            `    include ${dir}/site;`,
            "}",
            "",
        ].join("\n"));
        ns = createNetns("ovl-nginx");
        const test = ns.run("nginx", ["-t", "-c", conf]);
        assert.equal(test.status, 0, `nginx -t: ${test.stderr}`);
        captureOutput(ns.start("nginx", ["-c", conf, "-g", "daemon off;"]));
        captureOutput(ns.start(process.execPath, [path.join(helpers, "upgradeBackend.js"), String(tunnelPort)]));
        assert.ok(await waitUntil(() => curl(`http://127.0.0.1:${tunnelPort}/`).status === 0 && curl("-o", "/dev/null", "http://127.0.0.1/").status !== 7, 10_000),
            `nginx or the backend did not start: ${fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, "utf8") : ""}`);
    });

    after(() => {
        ns?.destroy();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("passes nginx -t on Debian's nginx (1.22, no `http2 on;`)", () => {
        const version = ns.run("nginx", ["-v"]).stderr;
        assert.match(version, /nginx\/1\.22\./, version);
        assert.doesNotMatch(fs.readFileSync(path.join(dir, "site"), "utf8"), /http2/);
    });

    it("carries an Upgrade through to the backend, and bytes both ways after the 101", () => {
        const r = ns.run(process.execPath, [path.join(helpers, "upgradeClient.js"), "127.0.0.1", "443", hostname, cert], { timeoutMs: 20_000 });
        const result = JSON.parse(r.stdout.trim() || "{}");
        assert.match(result.status ?? "", /^HTTP\/1\.1 101 /, r.stdout + r.stderr);
        assert.equal(result.fromBackend, "hello-from-backend");
        assert.equal(result.echoed, "echo:ping-from-client");
    });

    it("passes Host and X-Forwarded-* headers to headscale", () => {
        const r = curl("--cacert", cert, "--resolve", `${hostname}:443:127.0.0.1`, `https://${hostname}/key?v=1`);
        assert.equal(r.status, 0, r.stderr);
        const seen = JSON.parse(r.stdout);
        assert.equal(seen.url, "/key?v=1");
        assert.equal(seen.headers.host, hostname);
        assert.equal(seen.headers["x-forwarded-proto"], "https");
        assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
        assert.equal(seen.headers["x-real-ip"], "127.0.0.1");
    });

    it("answers ACME challenges and /generate_204 on port 80, and redirects the rest to HTTPS", () => {
        const acme = curl("-H", `Host: ${hostname}`, "http://127.0.0.1/.well-known/acme-challenge/token123");
        assert.equal(acme.stdout, "token123.thumbprint");
        const probe = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", `Host: ${hostname}`, "http://127.0.0.1/generate_204");
        assert.equal(probe.stdout, "204");
        const redirect = curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", `Host: ${hostname}`, "http://127.0.0.1/some/path?q=1");
        assert.equal(redirect.stdout, `301 https://${hostname}/some/path?q=1`);
    });

    it("gives other names nothing: 444 on HTTP and no TLS handshake", () => {
        const http = curl("-H", "Host: other.example.com", "http://127.0.0.1/");
        assert.equal(http.status, 52, "empty reply expected (444)");
        const https = curl("-k", "--resolve", "other.example.com:443:127.0.0.1", "https://other.example.com/");
        assert.equal(https.status, 35, `TLS handshake should fail: ${https.stderr}`);
        const noSni = curl("-k", "https://127.0.0.1/");
        assert.equal(noSni.status, 35, "a handshake without a name should fail");
    });
});

describe("coturn, STUN only", () => {
    let ns: Netns;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-coturn-"));

    before(async () => {
        requireTool("turnserver");
        requireTool("turnutils_stunclient");
        ns = createNetns("ovl-stun");
        // The VPS's public addresses, on the namespace's own loopback.
        spawnSync("ip", ["-n", ns.name, "addr", "add", "203.0.113.10/32", "dev", "lo"]);
        spawnSync("ip", ["-n", ns.name, "-6", "addr", "add", "2001:db8::10/128", "dev", "lo", "nodad"]);
        const conf = path.join(dir, "turnserver.conf");
        fs.writeFileSync(conf, renderTurnserverConf({ listen: ["203.0.113.10", "2001:db8::10"] }));
        captureOutput(ns.start("turnserver", ["-c", conf, "--pidfile", path.join(dir, "turnserver.pid")]));
        assert.ok(await waitUntil(() => /203\.0\.113\.10:3478/.test(ns.run("ss", ["-lnu"]).stdout), 10_000), "turnserver did not start");
    });

    after(() => {
        ns?.destroy();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("answers a STUN binding request over UDP on both addresses", () => {
        for (const address of ["203.0.113.10", "2001:db8::10"]) {
            const r = ns.run("turnutils_stunclient", ["-p", "3478", address], { timeoutMs: 15_000 });
            assert.match(r.stdout + r.stderr, /UDP reflexive addr/, `${address}: ${r.stdout}${r.stderr}`);
        }
    });

    it("listens on nothing else: no TCP (not 3478, not the CLI's 5766), only udp/3478", () => {
        assert.equal(ns.run("ss", ["-Hltn"]).stdout.trim(), "", "something listens on TCP");
        const udp = ns.run("ss", ["-Hlnu"]).stdout.trim().split("\n").map((l) => l.split(/\s+/)[3]);
        for (const local of udp) assert.match(local, /:3478$/, `unexpected UDP listener ${local}`);
    });
});

describe("the firewall", () => {
    it("is accepted by nft and opens exactly ssh, http, https and stun, never the tunnel port", () => {
        requireTool("nft");
        const ns = createNetns("ovl-nft");
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-nft-"));
        try {
            const file = path.join(dir, "rules.nft");
            const rules = renderFirewall({ sshPort: 2222 });
            fs.writeFileSync(file, rules);
            const check = ns.run("nft", ["-c", "-f", file]);
            assert.equal(check.status, 0, check.stderr);
            // Loading twice leaves one table: the file replaces it as a whole.
            for (let i = 0; i < 2; i++) assert.equal(ns.run("nft", ["-f", file]).status, 0);
            const listed = ns.run("nft", ["list", "ruleset"]).stdout;
            assert.equal(listed.match(/table inet overlay_firewall/g)?.length, 1);
            assert.match(listed, /policy drop;/);
            const ports = [...listed.matchAll(/(tcp|udp) dport (\d+) (?:ct state new update .* drop|accept)/g)].map((m) => `${m[1]}/${m[2]}`);
            assert.deepEqual([...new Set(ports)].sort(), ["tcp/2222", "tcp/443", "tcp/80", "udp/3478"]);
            assert.doesNotMatch(listed, new RegExp(`dport ${tunnelPort}\\b`));
        } finally {
            ns.destroy();
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
