// The VPS edge: its renderers, how a step carries its arguments to bash, and the VpsEdge
// resources the home stack registers.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { describe, it } from "node:test";
import { renderTurnserverConf } from "../components/vps/coturn";
import { renderFirewall } from "../components/vps/firewall";
import { renderNginxSite } from "../components/vps/nginx";
import { renderAuthorizedKeys, renderSshdDropIn } from "../components/vps/sshd";
import { closingLine, renderStepStdin, stepFiles, stepScriptPath } from "../components/vps/steps";
import { evaluate } from "./helpers/evaluate";
import { exampleConfig, testSshKey } from "./helpers/stack";

const publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf6nxOFGitlZ5GdkZE3EqOVMa2gFlnikrhRaOG3osF2 someone@somewhere";

describe("VPS renderers", () => {
    it("write the authorized_keys line with every restriction", () => {
        assert.equal(renderAuthorizedKeys({ publicKey, tunnelPort: 8080 }),
            'restrict,port-forwarding,permitlisten="127.0.0.1:8080",command="/usr/local/lib/overlay/tunnel-session" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf6nxOFGitlZ5GdkZE3EqOVMa2gFlnikrhRaOG3osF2 overlay-tunnel\n');
    });

    it("write the sshd Match block with the tunnel port", () => {
        const dropIn = renderSshdDropIn({ tunnelPort: 9443 });
        assert.match(dropIn, /^Match User tunnel$/m);
        assert.match(dropIn, /^ {4}PermitListen 127\.0\.0\.1:9443$/m);
        // Every session runs tunnel-session, which ends a connection after three missed heartbeats.
        assert.match(dropIn, /^ {4}ForceCommand \/usr\/local\/lib\/overlay\/tunnel-session$/m);
        assert.match(dropIn, /^ {4}SetEnv OVERLAY_TUNNEL_SILENCE_SECONDS=15$/m);
    });

    it("keep nginx's timeouts well above headscale's 60 s keepalives, and buffering off", () => {
        const site = renderNginxSite({ hostname: "h.example.com", tunnelPort: 8080, tls: { certificate: "/c", privateKey: "/k" } });
        for (const t of site.matchAll(/proxy_(read|send)_timeout (\d+)s;/g)) assert.ok(Number(t[2]) >= 300, t[0]);
        assert.match(site, /proxy_buffering off;/);
        assert.match(site, /proxy_pass http:\/\/127\.0\.0\.1:8080;/);
        assert.match(site, /ssl_reject_handshake on;/);
    });

    it("leave HTTPS out of the site until there is a certificate", () => {
        const site = renderNginxSite({ hostname: "h.example.com", tunnelPort: 8080, tls: undefined });
        assert.doesNotMatch(site, /443|ssl/);
        assert.match(site, /acme-challenge/);
    });

    it("render the same bytes for the same inputs", () => {
        const args = { hostname: "h.example.com", tunnelPort: 8080, tls: { certificate: "/c", privateKey: "/k" } };
        assert.equal(renderNginxSite(args), renderNginxSite({ ...args }));
        assert.equal(renderTurnserverConf({ listen: ["203.0.113.10"] }), renderTurnserverConf({ listen: ["203.0.113.10"] }));
        assert.equal(renderFirewall({ sshPort: 22 }), renderFirewall({ sshPort: 22 }));
        assert.equal(renderStepStdin("nginx", { params: ["a"] }), renderStepStdin("nginx", { params: ["a"] }));
    });
});

describe("a step's arguments", () => {
    // Any content, with quotes, dollars, backticks, blank lines and no final newline.
    const awkward = "it's \"$HOME\" `id` \\ \n\n\tend";
    const files = { "/etc/one.conf": "line\n", "/etc/deep/two.conf": awkward };

    it("reach bash byte for byte, and are read back the same by the plan", () => {
        const probe = [
            fs.readFileSync(stepScriptPath("lib"), "utf8"),
            'main() { shift; stage_arguments "$@"; printf "%s|" "${params[@]}"; cat "$(staged /etc/one.conf)" "$(staged /etc/deep/two.conf)"; }',
            closingLine({ params: ["a b", "c'd"], files }),
        ].join("\n");
        const r = spawnSync("bash", ["-s", "--", "apply"], { input: probe, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, `a b|c'd|line\n${awkward}`);
        assert.deepEqual(stepFiles(renderStepStdin("coturn", { files })), files);
    });

    it("never put file contents or parameters on the command line", () => {
        const run = spawnSync("bash", ["-s", "--", "bogus"], { input: renderStepStdin("coturn", { files }), encoding: "utf8" });
        assert.notEqual(run.status, 0);
        assert.match(run.stderr, /usage: apply/);
    });
});

describe("the VPS edge in the home stack", () => {
    it("runs each step over SSH as the configured user, pinned to the host key", async () => {
        const run = await evaluate(exampleConfig());
        assert.equal(run.error, undefined);
        const steps = run.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name).sort();
        assert.deepEqual(steps, ["vps-backup-store", "vps-coturn", "vps-firewall", "vps-nginx", "vps-tunnel-endpoint"]);
        for (const name of steps) {
            const r = run.resources.find((x) => x.name === name)!;
            const inputs = run.inputs(name);
            assert.equal(inputs.create, "bash -s -- apply");
            assert.equal(inputs.update, "bash -s -- apply");
            assert.match(inputs.delete, /^bash -s -- remove/);
            assert.equal(inputs.connection, "[secret]", "the connection (with the SSH key) is secret");
            const connection = (r.inputs as any).connection.value;
            assert.equal(connection.hostKey, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf6nxOFGitlZ5GdkZE3EqOVMa2gFlnikrhRaOG3osF2");
            assert.equal(connection.host, "203.0.113.10");
            assert.equal(connection.user, "root");
            assert.ok(!String(inputs.stdin).includes(testSshKey.split("\n")[1]), `${name} sends the SSH key`);
        }
        const firewall = run.resources.find((r) => r.name === "vps-firewall")!;
        const urnOf = (n: string) => run.resources.find((r) => r.name === n)!.urn;
        for (const before of ["vps-tunnel-endpoint", "vps-nginx", "vps-coturn"]) assert.ok(firewall.dependencies.includes(urnOf(before)), `firewall after ${before}`);
        const tunnel = run.resources.find((r) => r.name === "vps-tunnel-endpoint")!;
        assert.ok(tunnel.dependencies.includes(urnOf("tunnel-key")), "the tunnel user authorises the generated key");
        assert.equal(stepFiles(run.inputs("vps-nginx").stdin)["/etc/nginx/sites-available/overlay-headscale"].includes("/etc/letsencrypt/live/headscale.example.com/fullchain.pem"), true);
    });

    it("has, beside each step, a resource that checks it over the same connection with the same stdin, after the step", async () => {
        const run = await evaluate(exampleConfig());
        const states = run.resources.filter((r) => r.type === "pulumi-nodejs:dynamic:Resource").map((r) => r.name).sort();
        assert.deepEqual(states, ["vps-backup-store-state", "vps-coturn-state", "vps-firewall-state", "vps-nginx-state", "vps-tunnel-endpoint-state"]);
        for (const name of states) {
            const step = name.replace(/-state$/, "");
            const state = run.resources.find((r) => r.name === name)!;
            const command = run.resources.find((r) => r.name === step)!;
            const inputs = run.inputs(name);
            assert.equal(inputs.step, step.replace(/^vps-/, ""));
            assert.equal(inputs.checkCommand, "bash -s -- check");
            assert.equal(inputs.applyCommand, "bash -s -- apply");
            assert.equal(inputs.stdin, run.inputs(step).stdin, `${name} checks what ${step} applies`);
            const { privateKey, ...address } = (state.inputs as any).connection;
            const stepConnection = (command.inputs as any).connection.value;
            assert.deepEqual(address, { host: stepConnection.host, port: stepConnection.port, user: stepConnection.user, hostKey: stepConnection.hostKey });
            assert.equal(privateKey.value, stepConnection.privateKey, "the same SSH key");
            assert.equal(run.inputs(name).connection.privateKey, "[secret]", "the SSH key is a secret input");
            assert.ok(state.additionalSecretOutputs.includes("connection"), "the SSH key stays secret in the state");
            assert.ok(state.dependencies.includes(command.urn), `${name} runs after ${step}`);
            assert.equal(state.deletedWith, command.urn, "nothing of its own to delete");
        }
    });

    it("goes through sudo for a user other than root", async () => {
        const run = await evaluate(exampleConfig({ set: { vpsSshUser: "admin" } }));
        assert.equal(run.inputs("vps-nginx").create, "sudo -n bash -s -- apply");
        assert.equal(run.inputs("vps-nginx-state").checkCommand, "sudo -n bash -s -- check");
        assert.equal(run.inputs("vps-nginx-state").applyCommand, "sudo -n bash -s -- apply");
    });

    it("installs a provided TLS key in its own step, secret and silent", async () => {
        const certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        const run = await evaluate(exampleConfig({ set: { tlsMode: "provided", tlsCertificate: certificate, tlsPrivateKey: testSshKey }, secret: ["tlsPrivateKey"] }));
        assert.equal(run.error, undefined, run.error?.message);
        const step = run.resources.find((r) => r.name === "vps-tls-key")!;
        assert.equal(run.inputs("vps-tls-key").stdin, "[secret]");
        assert.equal(run.inputs("vps-tls-key").logging, "none");
        for (const output of ["stdout", "stderr"]) assert.ok(step.additionalSecretOutputs.includes(output), output);
        const state = run.resources.find((r) => r.name === "vps-tls-key-state")!;
        assert.equal(run.inputs("vps-tls-key-state").stdin, "[secret]");
        assert.ok(state.additionalSecretOutputs.includes("stdin"), "the key stays secret in the checked state");
        const nginx = run.resources.find((r) => r.name === "vps-nginx")!;
        assert.ok(nginx.dependencies.includes(step.urn), "nginx waits for its key");
        const files = stepFiles(run.inputs("vps-nginx").stdin);
        assert.equal(files["/etc/ssl/overlay/headscale.example.com.crt"], certificate);
        assert.match(files["/etc/nginx/sites-available/overlay-headscale"], /ssl_certificate_key \/etc\/ssl\/overlay\/headscale\.example\.com\.key;/);
    });
});
