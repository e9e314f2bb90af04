// The resource that sees drift on the VPS: its ssh command line, and its provider against a real
// sshd in a network namespace of the test's own (ssh reaches it through a wrapper that enters
// the namespace). The step here is a small script working in a scratch directory, so that the
// test changes nothing else on this machine; the real steps' checks are tested in
// steps.test.ts, and the whole loop with the real CLI against a VM in the e2e.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { driftLines, needsUpdate, sshArgs, StepConnection, StepStateProps, stepStateProvider } from "../components/vps/stepState";
import { createNetns, Netns } from "./helpers/netns";
import { startSshd } from "./helpers/sshd";
import { requireTool } from "./helpers/tools";

const connection: StepConnection = { host: "203.0.113.10", port: 2222, user: "admin", privateKey: "KEY", hostKey: "ssh-ed25519 AAAAC3Nza" };

describe("the drift resource's parts", () => {
    it("runs ssh in batch mode with only the given key, and only the pinned host key", () => {
        const args = sshArgs(connection, "/k", "/kh", "sudo -n bash -s -- check");
        const option = (name: string) => args.filter((a) => a.startsWith(`${name}=`));
        assert.deepEqual(option("StrictHostKeyChecking"), ["StrictHostKeyChecking=yes"]);
        assert.deepEqual(option("UserKnownHostsFile"), ["UserKnownHostsFile=/kh"]);
        assert.deepEqual(option("GlobalKnownHostsFile"), ["GlobalKnownHostsFile=/dev/null"]);
        assert.deepEqual(option("BatchMode"), ["BatchMode=yes"]);
        assert.deepEqual(args.slice(0, 2), ["-F", "/dev/null"], "no ssh_config of the machine's or the user's");
        assert.deepEqual(args.slice(-5), ["-l", "admin", "--", "203.0.113.10", "sudo -n bash -s -- check"]);
        assert.equal(args[args.indexOf("-p") + 1], "2222");
        assert.equal(args[args.indexOf("-i") + 1], "/k");
    });

    it("reads the drift lines of a check and nothing else", () => {
        assert.deepEqual(driftLines("overlay: noise\ndrift: /etc/a is missing\n\ndrift: the service nginx is not running\n"), ["/etc/a is missing", "the service nginx is not running"]);
        assert.deepEqual(driftLines(""), []);
    });

    it("updates when the state holds drift or the step's inputs changed, and not otherwise", () => {
        const props: StepStateProps = { step: "nginx", connection, stdin: "S", checkCommand: "bash -s -- check", applyCommand: "bash -s -- apply", drift: [] };
        assert.equal(needsUpdate(props, { ...props, drift: undefined }), false);
        assert.equal(needsUpdate({ ...props, drift: ["x"] }, props), true);
        assert.equal(needsUpdate(props, { ...props, stdin: "T" }), true);
        assert.equal(needsUpdate(props, { ...props, connection: { ...connection, port: 22 } }), true);
    });
});

describe("the drift resource's provider over SSH (real sshd, own namespace)", () => {
    let ns: Netns;
    let dir: string;
    let props: StepStateProps;
    const savedEnv = { PATH: process.env.PATH, TMPDIR: process.env.TMPDIR };

    before(async () => {
        requireTool("ssh-keygen");
        assert.ok(fs.existsSync("/usr/sbin/sshd"), "openssh-server is not installed: apt-get install openssh-server");
        ns = createNetns("ovl-state");
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-step-state-"));
        const etcSsh = path.join(ns.etc, "ssh");
        fs.mkdirSync(etcSsh, { recursive: true });
        spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(etcSsh, "ssh_host_ed25519_key")]);
        spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path.join(dir, "id")]);
        fs.writeFileSync(path.join(etcSsh, "root_keys"), fs.readFileSync(path.join(dir, "id.pub")), { mode: 0o600 });
        fs.writeFileSync(path.join(etcSsh, "sshd_config"), [
            "HostKey /etc/ssh/ssh_host_ed25519_key",
            "PermitRootLogin prohibit-password",
            "AuthorizedKeysFile /etc/ssh/root_keys",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PidFile none",
            "",
        ].join("\n"));
        fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
        await startSshd(ns, path.join(dir, "sshd.log"), ["/usr/sbin/sshd", "-f", "/etc/ssh/sshd_config"]);

        // ssh as the provider runs it, inside the namespace.
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(bin, "ssh"), `#!/bin/sh\nexec ip netns exec ${ns.name} ${requireTool("ssh")} "$@"\n`, { mode: 0o755 });
        process.env.PATH = `${bin}:${process.env.PATH}`;
        // The provider's scratch files (the key, known_hosts) go here, to be seen gone.
        fs.mkdirSync(path.join(dir, "tmp"));
        process.env.TMPDIR = path.join(dir, "tmp");

        const file = path.join(dir, "applied.conf");
        // A step in miniature: check names the difference, apply writes the file.
        const stdin = [
            "main() {",
            "    case $1 in",
            `        check) [ -f ${file} ] || { echo "drift: ${file} is missing"; return; }`,
            `               [ "$(cat ${file})" = wanted ] || echo "drift: ${file}: its content differs" ;;`,
            `        apply) echo "overlay: writing ${file}" >&2; echo wanted > ${file} ;;`,
            "    esac",
            "}",
            'main "$@"',
            "",
        ].join("\n");
        const hostKey = fs.readFileSync(path.join(etcSsh, "ssh_host_ed25519_key.pub"), "utf8");
        props = {
            step: "miniature",
            connection: { host: "127.0.0.1", port: 22, user: "root", privateKey: fs.readFileSync(path.join(dir, "id"), "utf8"), hostKey },
            stdin, checkCommand: "bash -s -- check", applyCommand: "bash -s -- apply",
        };
    });

    after(() => {
        process.env.PATH = savedEnv.PATH;
        if (savedEnv.TMPDIR === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedEnv.TMPDIR;
        ns?.destroy();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const target = () => path.join(dir, "applied.conf");
    /** Files the provider left in its temporary directory: the shared connections' sockets only, never a key. */
    const leftovers = () => (fs.readdirSync(path.join(dir, "tmp"), { recursive: true }) as string[])
        .filter((f) => !fs.statSync(path.join(dir, "tmp", f)).isDirectory() && !fs.statSync(path.join(dir, "tmp", f)).isSocket());
    const logins = () => (fs.readFileSync(path.join(dir, "sshd.log"), "utf8").match(/Accepted publickey for root/g) ?? []).length;

    it("create checks the step it sits beside, and applies it again where it did not take", async () => {
        const created = await stepStateProvider.create(props);
        assert.deepEqual(created.outs.drift, []);
        assert.equal(fs.readFileSync(target(), "utf8"), "wanted\n");
        assert.deepEqual(leftovers(), [], "the key file and known_hosts are removed");
        assert.equal(logins(), 1, "check, apply and check again share one SSH connection");
    });

    it("read names a hand edit, changes nothing, and the diff then asks for an update", async () => {
        fs.writeFileSync(target(), "edited by hand\n");
        const read = await stepStateProvider.read!("miniature", { ...props, drift: [] });
        assert.deepEqual(read.props.drift, [`${target()}: its content differs`]);
        assert.equal(fs.readFileSync(target(), "utf8"), "edited by hand\n", "a check changes nothing");
        const diff = await stepStateProvider.diff!("miniature", read.props, props);
        assert.equal(diff.changes, true);
        assert.deepEqual(diff.replaces, [], "never replaced: a replacement would run the step's remove");
    });

    it("update applies the step again, and the next read finds no drift", async () => {
        const updated = await stepStateProvider.update!("miniature", { ...props, drift: ["x"] }, props);
        assert.deepEqual(updated.outs!.drift, []);
        assert.equal(fs.readFileSync(target(), "utf8"), "wanted\n");
        const read = await stepStateProvider.read!("miniature", updated.outs);
        assert.deepEqual(read.props.drift, []);
        assert.equal(logins(), 1, "every session so far went over the first connection");
        const diff = await stepStateProvider.diff!("miniature", read.props, props);
        assert.equal(diff.changes, false, "no drift, no update");
    });

    it("update fails, naming what is left, when the apply cannot repair the drift", async () => {
        // As when another file on the VPS overrides the step's: its apply leaves the difference.
        const stuck = { ...props, stdin: props.stdin.replace("echo wanted >", "echo other >") };
        fs.writeFileSync(target(), "edited by hand\n");
        await assert.rejects(stepStateProvider.update!("miniature", props, stuck), (err: Error) => {
            assert.match(err.message, /the step miniature ran on root@127\.0\.0\.1:22, but the VPS still differs from it:\n {2}.*applied\.conf: its content differs/);
            return true;
        });
    });

    it("an unreachable VPS is an error naming the host, never a resource gone", async () => {
        await assert.rejects(stepStateProvider.read!("miniature", { ...props, connection: { ...props.connection, port: 2 } }), (err: Error) => {
            assert.match(err.message, /^could not reach the VPS at root@127\.0\.0\.1:2 to check the step miniature: .*Connection refused/);
            return true;
        });
        assert.deepEqual(leftovers(), []);
    });

    it("another host key is refused: the check does not run", async () => {
        const other = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "other")]);
        assert.equal(other.status, 0);
        fs.writeFileSync(target(), "edited by hand\n");
        const hostKey = fs.readFileSync(path.join(dir, "other.pub"), "utf8");
        await assert.rejects(stepStateProvider.update!("miniature", { ...props, drift: ["x"] }, { ...props, connection: { ...props.connection, hostKey } }), (err: Error) => {
            assert.match(err.message, /^could not reach the VPS at root@127\.0\.0\.1:22 to check the step miniature: [^]*Host key verification failed/);
            return true;
        });
        assert.equal(fs.readFileSync(target(), "utf8"), "edited by hand\n");
    });
});
