// The VPS step scripts run for real, as root, against this machine's own OpenSSH, nginx,
// coturn and nftables, but inside a network namespace with /etc, /var and /usr/local behind overlays:
// every change lands in the test's scratch directory and the host is left as it was.
// systemd is not running here, so a stand-in systemctl records what would be restarted.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { renderTurnserverConf } from "../components/vps/coturn";
import { renderFirewall } from "../components/vps/firewall";
import { tunnelUser } from "../components/router/tunnel";
import { nginxLimitsPath, nginxWorkerConnections, renderNginxLimits, renderTunnelLimits, tunnelLimitsPath, vpsOpenFiles } from "../components/vps/limits";
import { acmeTlsFiles, nginxSitePath, providedTlsFiles, renderNginxSite } from "../components/vps/nginx";
import { authorizedKeysPath, renderAuthorizedKeys, renderSshdDropIn, sshdDropInPath, tunnelSessionPath, tunnelSessionScript } from "../components/vps/sshd";
import { renderStepStdin, StepCall, StepName } from "../components/vps/steps";
import { placeholderKeypair } from "../plan/placeholderKeys";
import { createNetns, Netns } from "./helpers/netns";

const hostname = "headscale.example.com";
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-steps-"));
const upper = path.join(scratch, "upper");
const state = path.join(scratch, "systemctl");
const stubBin = path.join(scratch, "bin");
const certbotLog = path.join(scratch, "certbot.log");
let ns: Netns;

const tls = providedTlsFiles(hostname);
const tunnelKey = placeholderKeypair("steps test tunnel key").publicKeyOpenssh;
const certificate = (() => {
    const dir = fs.mkdtempSync(path.join(scratch, "cert-"));
    spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-keyout", `${dir}/key`, "-out", `${dir}/cert`, "-subj", `/CN=${hostname}`]);
    return { cert: fs.readFileSync(`${dir}/cert`, "utf8"), key: fs.readFileSync(`${dir}/key`, "utf8") };
})();

// The backup-store step has its own tests (backupStore.test.ts), with /srv in its sandbox.
type Step = Exclude<StepName, "backup-store">;
const calls: Record<Step, StepCall> = {
    "tunnel-endpoint": {
        files: {
            [authorizedKeysPath]: renderAuthorizedKeys({ publicKey: tunnelKey, tunnelPort: 8080 }),
            [sshdDropInPath]: renderSshdDropIn({ tunnelPort: 8080 }),
            [tunnelLimitsPath]: renderTunnelLimits(tunnelUser),
            [tunnelSessionPath]: tunnelSessionScript,
        },
    },
    "tls-key": { files: { [tls.privateKey]: certificate.key } },
    nginx: {
        params: [hostname, "provided", "", String(nginxWorkerConnections)],
        files: {
            [nginxSitePath]: renderNginxSite({ hostname, tunnelPort: 8080, tls }),
            [`${nginxSitePath}.http-only`]: renderNginxSite({ hostname, tunnelPort: 8080, tls: undefined }),
            [nginxLimitsPath]: renderNginxLimits(),
            [tls.certificate]: certificate.cert,
        },
    },
    coturn: { files: { "/etc/turnserver.conf": renderTurnserverConf({ listen: ["203.0.113.10"] }) } },
    firewall: { files: { "/etc/nftables.d/overlay-firewall.nft": renderFirewall({ sshPort: 22 }) } },
};
const removeArgs: Record<Step, string[]> = { "tunnel-endpoint": [], "tls-key": [hostname], nginx: [hostname], coturn: [], firewall: [] };
const order: Step[] = ["tunnel-endpoint", "tls-key", "nginx", "coturn", "firewall"];

/** Runs a shell command inside the sandbox: the namespace, with /etc, /var and /usr/local overlaid. */
function sandbox(command: string, input?: string) {
    const mounts = ["etc", "var", "usr/local"].map((d) =>
        `mkdir -p ${upper}/${d} ${scratch}/work/${d} && mount -t overlay overlay -o lowerdir=/${d},upperdir=${upper}/${d},workdir=${scratch}/work/${d} /${d}`).join(" && ");
    return ns.run("unshare", ["--mount", "--propagation", "private", "bash", "-c", `${mounts} && ${command}`], {
        input,
        env: { PATH: `${stubBin}:${process.env.PATH}`, SYSTEMCTL_STATE: state, CERTBOT_LOG: certbotLog },
        timeoutMs: 60_000,
    });
}

/** Runs a step as Pulumi would (`bash -s -- ACTION` with the step on stdin), inside the sandbox. */
function step(name: Step, action: "apply" | "remove" | "check", call: StepCall = calls[name]) {
    return sandbox(`exec bash -s -- ${action} ${(action === "remove" ? removeArgs[name] : []).join(" ")}`, renderStepStdin(name, call));
}

/** Whether a path exists as the VPS would see it. */
const existsOnVps = (file: string) => sandbox(`test -e ${file} || test -L ${file}`).status === 0;

/** Every file the steps left, with its content hash and modification time. */
function snapshot(): Record<string, string> {
    const files: Record<string, string> = {};
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, e.name);
            if (e.isDirectory()) walk(full);
            else if (e.isFile()) files[path.relative(upper, full)] = `${createHash("sha256").update(fs.readFileSync(full)).digest("hex")} ${fs.statSync(full).mtimeMs}`;
            else files[path.relative(upper, full)] = e.isSymbolicLink() ? `-> ${fs.readlinkSync(full)}` : "special";
        }
    };
    if (fs.existsSync(upper)) walk(upper);
    return files;
}

const certbotCalls = () => (fs.existsSync(certbotLog) ? fs.readFileSync(certbotLog, "utf8").trim().split("\n") : []);
const serviceLog = () => (fs.existsSync(path.join(state, "log")) ? fs.readFileSync(path.join(state, "log"), "utf8") : "");
const inSandbox = (file: string) => path.join(upper, file.replace(/^\//, ""));

describe("the VPS steps, run for real in a sandbox", () => {
    before(() => {
        if (process.getuid?.() !== 0) throw new Error("the step tests run the scripts as root, as on the VPS");
        for (const bin of ["/usr/sbin/sshd", "/usr/sbin/nginx", "/usr/bin/turnserver", "/usr/sbin/nft", "/usr/sbin/useradd"]) {
            assert.ok(fs.existsSync(bin), `${bin} is missing: run bash scripts/install-test-tools.sh`);
        }
        fs.mkdirSync(stubBin, { recursive: true });
        for (const [stub, name] of [["systemctl-stub.sh", "systemctl"], ["certbot-stub.sh", "certbot"]]) {
            fs.copyFileSync(path.join(__dirname, "helpers", stub), path.join(stubBin, name));
            fs.chmodSync(path.join(stubBin, name), 0o755);
        }
        // sshd is running on the VPS when the steps arrive (and has made its privilege
        // separation directory, which `sshd -t` insists on).
        fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
        fs.mkdirSync(path.join(state, "active"), { recursive: true });
        fs.writeFileSync(path.join(state, "active", "ssh"), "");
        fs.mkdirSync(path.join(state, "enabled"), { recursive: true });
        fs.writeFileSync(path.join(state, "enabled", "ssh"), "");
        ns = createNetns("ovl-steps");
    });

    after(() => {
        ns?.destroy();
        fs.rmSync(scratch, { recursive: true, force: true });
    });

    it("apply: every step succeeds and installs exactly the rendered files", () => {
        for (const name of order) {
            const r = step(name, "apply");
            assert.equal(r.status, 0, `${name}: ${r.stderr}`);
            if (name === "tunnel-endpoint") {
                const [type, key] = fs.readFileSync("/etc/ssh/ssh_host_ed25519_key.pub", "utf8").trim().split(/\s+/);
                assert.equal(r.stdout.trim(), `${type} ${key}`, "the step reports the VPS host key, without its comment");
            }
        }
        for (const [target, content] of Object.entries(calls["tunnel-endpoint"].files!)) assert.equal(fs.readFileSync(inSandbox(target), "utf8"), content);
        assert.equal(fs.readFileSync(inSandbox(nginxSitePath), "utf8"), calls.nginx.files![nginxSitePath]);
        assert.equal(fs.readlinkSync(inSandbox("/etc/nginx/sites-enabled/overlay-headscale")), nginxSitePath);
        assert.equal(existsOnVps("/etc/nginx/sites-enabled/default"), false, "the distribution's default site is still enabled");
        assert.equal(fs.statSync(inSandbox(tls.privateKey)).mode & 0o777, 0o600, "the TLS key is private");
        assert.match(fs.readFileSync(inSandbox("/etc/passwd"), "utf8"), new RegExp(`^tunnel:x:\\d+:\\d+:overlay SSH reverse tunnel:/nonexistent:${tunnelSessionPath}$`, "m"), "the tunnel user's login shell is tunnel-session");
        assert.equal(fs.statSync(inSandbox(tunnelSessionPath)).mode & 0o777, 0o755);
        assert.match(fs.readFileSync(inSandbox("/etc/nftables.conf"), "utf8"), /^include "\/etc\/nftables.d\/overlay-firewall.nft"$/m);
        assert.match(ns.run("nft", ["list", "table", "inet", "overlay_firewall"]).stdout, /policy drop/);
        assert.match(serviceLog(), /reload ssh/);
        assert.match(serviceLog(), /restart coturn/);
    });

    it("apply: worker_connections raised in nginx.conf's events block, the one line changed; nginx gets a higher open-files limit and a restart, the tunnel user's sessions a limit of their own", () => {
        const distro = fs.readFileSync("/etc/nginx/nginx.conf", "utf8").split("\n");
        const edited = fs.readFileSync(inSandbox("/etc/nginx/nginx.conf"), "utf8").split("\n");
        const changed = distro.flatMap((line, i) => (line === edited[i] ? [] : [`${line} → ${edited[i]}`]));
        assert.equal(edited.length, distro.length);
        assert.deepEqual(changed, [`\tworker_connections 768; → \tworker_connections ${nginxWorkerConnections};`]);
        const events = /^events \{\n([^}]*)\}/m.exec(edited.join("\n"));
        assert.match(events?.[1] ?? "", new RegExp(`worker_connections ${nginxWorkerConnections};`), "the line is in the events block");
        assert.match(fs.readFileSync(inSandbox(nginxLimitsPath), "utf8"), new RegExp(`^\\[Service\\]\nLimitNOFILE=${vpsOpenFiles}$`, "m"));
        assert.match(fs.readFileSync(inSandbox(tunnelLimitsPath), "utf8"), new RegExp(`^${tunnelUser} - nofile ${vpsOpenFiles}$`, "m"));
        // A new limit needs a restart (a reload keeps a daemon's limit), after systemd read the drop-in.
        const log = serviceLog().split("\n");
        assert.ok(log.indexOf("daemon-reload") >= 0 && log.indexOf("daemon-reload") < log.indexOf("restart nginx"), serviceLog());
        assert.ok(!log.includes("restart ssh"), "sshd was restarted");
        assert.equal(sandbox("nginx -t").status, 0);
    });

    it("apply again: changes no file and restarts no service", () => {
        const files = snapshot();
        const log = serviceLog();
        const started = Date.now();
        for (const name of order) {
            const r = step(name, "apply");
            assert.equal(r.status, 0, `${name}: ${r.stderr}`);
        }
        console.log(`# second apply of all ${order.length} steps: ${Date.now() - started} ms, no change`);
        assert.deepEqual(snapshot(), files);
        assert.equal(serviceLog(), log, "a service was restarted or reloaded");
    });

    /** Every step's check: its "drift:" lines, by step; the steps change nothing. */
    const driftReport = () => {
        const files = snapshot();
        const log = serviceLog();
        const found: Record<string, string[]> = {};
        for (const name of order) {
            const r = step(name, "check");
            assert.equal(r.status, 0, `${name} check: ${r.stderr}`);
            const lines = r.stdout.split("\n").filter(Boolean);
            assert.ok(lines.every((l) => l.startsWith("drift: ")), r.stdout);
            if (lines.length > 0) found[name] = lines.map((l) => l.slice("drift: ".length));
        }
        assert.deepEqual(snapshot(), files, "a check changed a file");
        assert.equal(serviceLog(), log, "a check touched a service");
        return found;
    };

    it("check: with the VPS as applied, no step reports drift", () => {
        assert.deepEqual(driftReport(), {});
    });

    it("check: hand edits are each named by their step, without a secret's content; the step's apply repairs them", () => {
        const edits = [
            `printf '\n# edited by hand\n' >> ${nginxSitePath}`,
            `chmod 0644 ${tls.privateKey}`,
            `chown 4242:4242 ${nginxLimitsPath}`,
            `printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl someone\n' >> ${authorizedKeysPath}`,
            // Another file, read first, loosens the tunnel user's rules: sshd's first match wins.
            "printf 'Match User tunnel\\n    PermitOpen any\\n' > /etc/ssh/sshd_config.d/00-local.conf",
            "nft delete table inet overlay_firewall",
            "usermod --shell /bin/bash tunnel",
            `printf 'dropped\n' > /etc/turnserver.conf`,
        ];
        const edited = sandbox(edits.join(" && "));
        assert.equal(edited.status, 0, edited.stderr);
        const found = driftReport();
        assert.deepEqual(Object.keys(found).sort(), ["coturn", "firewall", "nginx", "tls-key", "tunnel-endpoint"]);
        assert.deepEqual(found.nginx, [`${nginxSitePath}: its content differs from the applied one`, `${nginxLimitsPath}: owner 4242:4242, applied root:root`]);
        assert.deepEqual(found["tls-key"], [`${tls.privateKey}: mode 644, applied 600`]);
        assert.deepEqual(found.coturn, ["/etc/turnserver.conf: its content differs from the applied one"]);
        assert.deepEqual(found.firewall, ["the firewall table overlay_firewall is not loaded"]);
        assert.deepEqual(found["tunnel-endpoint"], [
            `the user tunnel has the shell /bin/bash, applied ${tunnelSessionPath}`,
            `${authorizedKeysPath}: its content differs from the applied one`,
            "sshd gives tunnel 'permitopen any', applied 'PermitOpen none' (also set in /etc/ssh/sshd_config.d/00-local.conf)",
        ]);
        const key = certificate.key.split("\n").find((l) => l.length > 20)!;
        assert.ok(!JSON.stringify(found).includes(key), "a check printed the TLS key");

        // The applies repair what is theirs; the file of another's stays, and is still named.
        for (const name of order) assert.equal(step(name, "apply").status, 0, name);
        assert.deepEqual(driftReport(), { "tunnel-endpoint": ["sshd gives tunnel 'permitopen any', applied 'PermitOpen none' (also set in /etc/ssh/sshd_config.d/00-local.conf)"] });
        assert.equal(sandbox("rm /etc/ssh/sshd_config.d/00-local.conf").status, 0);
        assert.deepEqual(driftReport(), {});

        // A rule added to the loaded table by hand, the file untouched.
        assert.equal(sandbox("nft add rule inet overlay_firewall input tcp dport 5555 accept").status, 0);
        assert.deepEqual(driftReport(), { firewall: ["the firewall table overlay_firewall differs from the applied one"] });
        assert.equal(step("firewall", "apply").status, 0);
        assert.deepEqual(driftReport(), {});
    });

    it("a drop-in that sshd rejects fails the step with sshd's message and keeps the previous one", () => {
        const before = fs.readFileSync(inSandbox(sshdDropInPath), "utf8");
        const broken = { files: { ...calls["tunnel-endpoint"].files, [sshdDropInPath]: `${before}    NoSuchOption yes\n` } };
        const r = step("tunnel-endpoint", "apply", broken);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /rejected the new \/etc\/ssh\/sshd_config\.d\/overlay-tunnel\.conf.*NoSuchOption|NoSuchOption[\s\S]*rejected/);
        assert.equal(fs.readFileSync(inSandbox(sshdDropInPath), "utf8"), before);
    });

    it("a site that nginx rejects fails the step and keeps the previous one", () => {
        const before = fs.readFileSync(inSandbox(nginxSitePath), "utf8");
        const broken = { ...calls.nginx, files: { ...calls.nginx.files, [nginxSitePath]: `${before}\nserver { listen 443 ssl; bogus_directive on; }\n` } };
        const r = step("nginx", "apply", broken);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /bogus_directive/);
        assert.equal(fs.readFileSync(inSandbox(nginxSitePath), "utf8"), before);
    });

    it("worker_connections: a higher value set by hand stays; an events block the step cannot edit fails it, naming the line to set, and changes nothing", () => {
        const conf = inSandbox("/etc/nginx/nginx.conf");
        const ours = fs.readFileSync(conf, "utf8");
        try {
            fs.writeFileSync(conf, ours.replace(`worker_connections ${nginxWorkerConnections};`, "worker_connections 20000;"));
            const higher = step("nginx", "apply");
            assert.equal(higher.status, 0, higher.stderr);
            assert.match(fs.readFileSync(conf, "utf8"), /^\tworker_connections 20000;$/m);

            const oneLine = ours.replace(/^events \{[^}]*\}/m, "events { worker_connections 768; }");
            fs.writeFileSync(conf, oneLine);
            const refused = step("nginx", "apply");
            assert.notEqual(refused.status, 0);
            assert.match(refused.stderr, new RegExp(`no events block this step can edit.*set 'worker_connections ${nginxWorkerConnections};' in it by hand`));
            assert.equal(fs.readFileSync(conf, "utf8"), oneLine);
        } finally {
            fs.writeFileSync(conf, ours);
        }
    });

    it("remove: undoes what apply added", () => {
        for (const name of [...order].reverse()) {
            const r = step(name, "remove");
            assert.equal(r.status, 0, `${name}: ${r.stderr}`);
        }
        for (const gone of [sshdDropInPath, authorizedKeysPath, nginxSitePath, "/etc/nginx/sites-enabled/overlay-headscale", tls.privateKey, tls.certificate,
            "/etc/nftables.d/overlay-firewall.nft", nginxLimitsPath, tunnelLimitsPath, "/etc/nginx/.overlay-worker-connections"]) {
            assert.equal(existsOnVps(gone), false, `${gone} is still there`);
        }
        assert.equal(sandbox("cat /etc/nginx/nginx.conf").stdout, fs.readFileSync("/etc/nginx/nginx.conf", "utf8"), "nginx.conf is the distribution's again");
        assert.doesNotMatch(fs.readFileSync(inSandbox("/etc/passwd"), "utf8"), /^tunnel:/m, "the tunnel user is still there");
        assert.doesNotMatch(fs.readFileSync(inSandbox("/etc/nftables.conf"), "utf8"), /overlay-firewall/);
        assert.notEqual(ns.run("nft", ["list", "table", "inet", "overlay_firewall"]).status, 0, "the firewall table is still loaded");
        if (fs.existsSync("/etc/nginx/sites-available/default")) {
            assert.equal(sandbox("readlink /etc/nginx/sites-enabled/default").stdout.trim(), "/etc/nginx/sites-available/default", "the default site is back");
        }
        const conf = inSandbox("/etc/turnserver.conf");
        assert.ok(!fs.existsSync(conf) || !fs.readFileSync(conf, "utf8").includes("overlay Pulumi program"), "coturn's own config is back");
    });

    it("with ACME: serves the challenge over HTTP, asks certbot once, then serves HTTPS with its certificate", () => {
        const acme = acmeTlsFiles(hostname);
        const call: StepCall = {
            params: [hostname, "acme", "admin@example.com", String(nginxWorkerConnections)],
            files: {
                [nginxSitePath]: renderNginxSite({ hostname, tunnelPort: 8080, tls: acme }),
                [`${nginxSitePath}.http-only`]: renderNginxSite({ hostname, tunnelPort: 8080, tls: undefined }),
                [nginxLimitsPath]: renderNginxLimits(),
            },
        };
        const first = step("nginx", "apply", call);
        assert.equal(first.status, 0, first.stderr);
        assert.deepEqual(certbotCalls(), [`certonly --webroot -w /var/www/overlay-acme -d ${hostname} --email admin@example.com --agree-tos --no-eff-email --non-interactive --quiet`]);
        assert.equal(fs.readFileSync(inSandbox(nginxSitePath), "utf8"), call.files![nginxSitePath], "the HTTPS site is in place");
        assert.equal(sandbox("nginx -t").status, 0);
        const hook = "/etc/letsencrypt/renewal-hooks/deploy/overlay-reload-nginx";
        assert.equal(fs.statSync(inSandbox(hook)).mode & 0o111, 0o111, "certbot's renewal reloads nginx");

        const files = snapshot();
        const again = step("nginx", "apply", call);
        assert.equal(again.status, 0, again.stderr);
        assert.equal(certbotCalls().length, 1, "certbot was asked again");
        assert.deepEqual(snapshot(), files);

        assert.equal(step("nginx", "remove").status, 0);
        assert.equal(existsOnVps(hook), false);
        assert.equal(existsOnVps(nginxSitePath), false);
    });
});
