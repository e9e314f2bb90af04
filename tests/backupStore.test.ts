// The backup store with the real OpenSSH server: the rendered drop-in and authorized_keys at
// their real paths in a network namespace of the test's own, the chroot under a root-owned
// directory (sshd insists on one). The real `sftp` stores, renames, lists, fetches and removes
// backups; nothing else works. Then the step script, run as on the VPS in a sandbox as in
// tests/steps.test.ts, and the real sshd serving the store that the step built.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { knownHostsLine, tunnelUser } from "../components/router/tunnel";
import {
    backupAuthorizedKeysPath, backupChroot, backupSftpRequests, backupSshdDropInPath, backupStoreDir, backupStoreUser,
    renderBackupAuthorizedKeys, renderBackupSshdDropIn,
} from "../components/vps/backupStore";
import { renderStepStdin, StepCall } from "../components/vps/steps";
import { addSystemUser, captureOutput, createNetns, Netns, stopChild, waitUntil } from "./helpers/netns";
import { startSshd } from "./helpers/sshd";
import { requireTool } from "./helpers/tools";

const backupUid = 64998;
const backendPort = 9000;
const target = `${backupStoreUser}@127.0.0.1`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "overlay-backup-store-"));
const clientKey = path.join(scratch, "id_ed25519");
const strangerKey = path.join(scratch, "stranger_ed25519");
const knownHosts = path.join(scratch, "known_hosts");
const keygen = (file: string) => spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file]);

const sshOptions = (key = clientKey) => [
    "-i", key, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
];

let batches = 0;
/** Runs `sftp -b` with these commands; -b stops at the first one that fails. */
function sftp(ns: Netns, commands: string[], key = clientKey) {
    const batch = path.join(scratch, `batch-${++batches}`);
    fs.writeFileSync(batch, `${commands.join("\n")}\n`);
    return ns.run("sftp", ["-b", batch, ...sshOptions(key), target], { timeoutMs: 20_000 });
}

/** What the server answered: sftp's output without its echo of the batch's commands. */
const answers = (stdout: string) => stdout.split("\n").filter((line) => line && !line.startsWith("sftp> "));

/** Writes a local file in the scratch directory and returns its path. */
function localFile(name: string, content: string): string {
    fs.writeFileSync(path.join(scratch, name), content);
    return path.join(scratch, name);
}

/** The store's round trip with the real client: two versions through `.part`, the second replacing the first. */
function roundTrip(ns: Netns, name: string) {
    return sftp(ns, [
        "pwd",
        `put ${localFile(`${name}.v1`, `${name} version one\n`)} ${backupStoreDir}/${name}.part`,
        `rename ${backupStoreDir}/${name}.part ${backupStoreDir}/${name}`,
        `put ${localFile(`${name}.v2`, `${name} version two\n`)} ${backupStoreDir}/${name}.part`,
        `rename ${backupStoreDir}/${name}.part ${backupStoreDir}/${name}`,
        `ls -1 ${backupStoreDir}`,
        `get ${backupStoreDir}/${name} ${path.join(scratch, `${name}.fetched`)}`,
    ]);
}

after(() => fs.rmSync(scratch, { recursive: true, force: true }));

describe("the backup store under the real sshd", () => {
    let ns: Netns;
    let sshdLog: () => string;
    // sshd refuses a chroot unless every directory up to / is root's and writable by root only.
    let chrootParent: string;
    let chroot: string;
    let store: string;

    const get = (port: number) => {
        const r = ns.run("curl", ["-s", "--max-time", "3", `http://127.0.0.1:${port}/`], { timeoutMs: 10_000 });
        return r.status === 0 ? r.stdout : "";
    };

    before(async () => {
        for (const tool of ["ssh", "sftp", "ssh-keygen", "ssh-keyscan", "curl"]) requireTool(tool);
        assert.ok(fs.existsSync("/usr/sbin/sshd"), "openssh-server is not installed: apt-get install openssh-server");
        ns = createNetns("ovl-backup");

        chrootParent = fs.mkdtempSync("/run/overlay-backup-test-");
        fs.chmodSync(chrootParent, 0o755);
        chroot = path.join(chrootParent, "chroot");
        store = path.join(chroot, backupStoreDir);
        fs.mkdirSync(chroot, { mode: 0o755 });
        fs.mkdirSync(store, { mode: 0o700 });
        fs.chownSync(store, backupUid, backupUid);

        // The namespace's /etc/ssh: this machine's own main config (Debian's, as on the VPS,
        // sftp Subsystem included) behind the test's host key, pid file and log level, plus our two files.
        const etcSsh = path.join(ns.etc, "ssh");
        fs.mkdirSync(path.join(etcSsh, "sshd_config.d"), { recursive: true, mode: 0o755 });
        keygen(path.join(etcSsh, "ssh_host_ed25519_key"));
        const testOnly = "HostKey /etc/ssh/ssh_host_ed25519_key\nPidFile none\nLogLevel DEBUG1\n";
        fs.writeFileSync(path.join(etcSsh, "sshd_config"), testOnly + fs.readFileSync("/etc/ssh/sshd_config", "utf8"));
        keygen(clientKey);
        keygen(strangerKey);
        const inEtc = (file: string) => path.join(ns.etc, file.replace(/^\/etc\//, ""));
        fs.writeFileSync(inEtc(backupSshdDropInPath), renderBackupSshdDropIn({ chroot }));
        fs.mkdirSync(path.dirname(inEtc(backupAuthorizedKeysPath)), { mode: 0o755 });
        fs.writeFileSync(inEtc(backupAuthorizedKeysPath), renderBackupAuthorizedKeys({ publicKey: fs.readFileSync(`${clientKey}.pub`, "utf8") }), { mode: 0o644 });
        fs.writeFileSync(knownHosts, knownHostsLine("127.0.0.1", 22, fs.readFileSync(path.join(etcSsh, "ssh_host_ed25519_key.pub"), "utf8")));

        addSystemUser(ns, backupStoreUser, backupUid, "overlay backup store (SFTP only)");
        fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

        const check = ns.run("/usr/sbin/sshd", ["-t", "-f", "/etc/ssh/sshd_config"]);
        assert.equal(check.status, 0, `sshd -t: ${check.stderr}`);
        sshdLog = await startSshd(ns, path.join(scratch, "sshd.log"), ["/usr/sbin/sshd", "-f", "/etc/ssh/sshd_config"]);
        captureOutput(ns.start(process.execPath, ["-e", `require("http").createServer((q, s) => s.end("backend-ok")).listen(${backendPort}, "127.0.0.1")`]));
        assert.ok(await waitUntil(() => get(backendPort) === "backend-ok", 10_000), "the test backend did not start");
    });

    after(() => {
        ns?.destroy();
        if (chrootParent) fs.rmSync(chrootParent, { recursive: true, force: true });
    });

    it("applies the Match block to the backup user only, not to root nor to the tunnel's user", () => {
        const effective = (user: string) => ns.run("/usr/sbin/sshd", ["-T", "-f", "/etc/ssh/sshd_config", "-C", `user=${user},host=x,addr=127.0.0.1`]).stdout;
        const backup = effective(backupStoreUser);
        for (const line of [
            `authorizedkeysfile ${backupAuthorizedKeysPath}`, "authenticationmethods publickey", "passwordauthentication no", "kbdinteractiveauthentication no",
            `chrootdirectory ${chroot}`, `forcecommand internal-sftp -d ${backupStoreDir} -u 0077 -p ${backupSftpRequests.join(",")}`,
            "allowtcpforwarding no", "allowstreamlocalforwarding no", "x11forwarding no", "allowagentforwarding no", "permittunnel no", "permittty no", "permituserrc no",
        ]) {
            assert.match(backup, new RegExp(`^${line}$`, "m"), line);
        }
        for (const other of ["root", tunnelUser]) {
            const config = effective(other);
            for (const line of ["chrootdirectory none", "forcecommand none", "permittty yes"]) assert.match(config, new RegExp(`^${line}$`, "m"), `the Match block leaks to ${other}: ${line}`);
        }
    });

    it("stores, renames, lists, fetches and removes backups with the real sftp client", () => {
        const r = roundTrip(ns, "headscale-1.db.age");
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.deepEqual(answers(r.stdout), [`Remote working directory: ${backupStoreDir}`, `${backupStoreDir}/headscale-1.db.age`],
            "the session starts in the store, and the upload is listed under its final name only");
        assert.equal(fs.readFileSync(path.join(scratch, "headscale-1.db.age.fetched"), "utf8"), "headscale-1.db.age version two\n", "the rename replaced the first version");

        const onDisk = path.join(store, "headscale-1.db.age");
        assert.equal(fs.readFileSync(onDisk, "utf8"), "headscale-1.db.age version two\n");
        const stat = fs.statSync(onDisk);
        assert.equal(stat.uid, backupUid);
        assert.equal(stat.mode & 0o777, 0o600, "backups are readable by their owner only");

        const removed = sftp(ns, [`rm ${backupStoreDir}/headscale-1.db.age`, `ls -1 ${backupStoreDir}`]);
        assert.equal(removed.status, 0, removed.stdout + removed.stderr);
        assert.deepEqual(fs.readdirSync(store), []);
    });

    it("refuses every other SFTP request and writes nowhere but the store", () => {
        const kept = localFile("kept", "kept\n");
        assert.equal(sftp(ns, [`put ${kept} ${backupStoreDir}/kept`]).status, 0);
        for (const command of [
            `mkdir ${backupStoreDir}/dir`,
            `ln -s ${backupStoreDir}/kept ${backupStoreDir}/link`,
            `ln ${backupStoreDir}/kept ${backupStoreDir}/hardlink`,
            `chmod 644 ${backupStoreDir}/kept`,
            `rename -l ${backupStoreDir}/kept ${backupStoreDir}/renamed`,
            `put ${kept} /outside`,
        ]) {
            const r = sftp(ns, [command]);
            assert.notEqual(r.status, 0, `${command} was allowed:\n${r.stdout}`);
        }
        assert.deepEqual(fs.readdirSync(chroot), [path.basename(backupStoreDir)]);
        assert.deepEqual(fs.readdirSync(store), ["kept"]);
        assert.equal(fs.statSync(path.join(store, "kept")).mode & 0o777, 0o600);
        assert.equal(sftp(ns, [`rm ${backupStoreDir}/kept`]).status, 0);
    });

    it("answers df, so that a failed upload can say how much room was left", () => {
        const r = sftp(ns, [`df ${backupStoreDir}`]);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const [header, figures] = answers(r.stdout);
        assert.match(header, /^\s*Size\s+Used\s+Avail\s+\(root\)\s+%Capacity$/);
        assert.match(figures, /^\s*\d+\s+\d+\s+\d+\s+\d+\s+\d+%$/);
    });

    it("reads nothing outside the chroot", () => {
        for (const outside of ["/etc/passwd", "../../../../etc/passwd", `${chroot}/../../../etc/passwd`]) {
            const fetched = path.join(scratch, "passwd.fetched");
            const r = sftp(ns, [`get ${outside} ${fetched}`]);
            assert.notEqual(r.status, 0, `${outside}:\n${r.stdout}`);
            assert.equal(fs.existsSync(fetched), false);
        }
        const root = sftp(ns, ["ls -1 /", "ls -1 /etc"]);
        assert.notEqual(root.status, 0, "/etc exists in the chroot");
        assert.deepEqual(answers(root.stdout), [backupStoreDir], "the chroot holds more than the store");
    });

    it("gives no shell and runs no command", () => {
        const before = sshdLog().length;
        // A shell fed commands on stdin, a command, a command on a forced TTY.
        for (const [options, command] of [[[], []], [[], ["id; echo not-sftp"]], [["-tt"], ["id"]]]) {
            const r = ns.run("ssh", [...sshOptions(), ...options, target, ...command], { input: "id\necho not-sftp\n", timeoutMs: 15_000 });
            assert.doesNotMatch(r.stdout + r.stderr, /uid=|^not-sftp$/m, `ssh ${[...options, ...command].join(" ")}`);
        }
        const sessions = sshdLog().slice(before).match(/^Starting session: .*$/gm) ?? [];
        assert.equal(sessions.length, 3, sshdLog().slice(before));
        for (const session of sessions) assert.match(session, new RegExp(`^Starting session: forced-command \\(config\\) 'internal-sftp -d ${backupStoreDir} `), session);
    });

    it("refuses a local forward (-L)", async () => {
        const ssh = ns.start("ssh", [...sshOptions(), "-N", "-L", `127.0.0.1:7001:127.0.0.1:${backendPort}`, target]);
        const log = captureOutput(ssh);
        try {
            await waitUntil(() => ns.run("curl", ["-s", "--max-time", "2", "http://127.0.0.1:7001/"]).status !== 7, 10_000);
            assert.notEqual(get(7001), "backend-ok");
            assert.ok(await waitUntil(() => /administratively prohibited/.test(log()), 10_000), log());
        } finally {
            await stopChild(ssh);
        }
    });

    it("refuses a reverse forward (-R)", () => {
        const r = ns.run("ssh", [...sshOptions(), "-N", "-o", "ExitOnForwardFailure=yes", "-R", `127.0.0.1:7002:127.0.0.1:${backendPort}`, target], { timeoutMs: 20_000 });
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /remote port forwarding failed/);
    });

    it("refuses a key it was not given", () => {
        const r = sftp(ns, ["ls -1 /backups"], strangerKey);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /Permission denied \(publickey\)/);
    });
});

describe("the backup-store step, run for real in a sandbox", () => {
    // As in tests/steps.test.ts: /etc, /var and /srv behind overlays, so every change lands in
    // the scratch directory, and a stand-in systemctl that records what would be reloaded.
    const upper = path.join(scratch, "upper");
    const state = path.join(scratch, "systemctl");
    const stubBin = path.join(scratch, "bin");
    const storeOnVps = `${backupChroot}${backupStoreDir}`;
    let ns: Netns;
    let call: StepCall;

    const mounts = ["etc", "var", "srv"].map((d) =>
        `mkdir -p ${upper}/${d} ${scratch}/work/${d} && mount -t overlay overlay -o lowerdir=/${d},upperdir=${upper}/${d},workdir=${scratch}/work/${d} /${d}`).join(" && ");
    const sandboxEnv = { ...process.env, PATH: `${stubBin}:${process.env.PATH}`, SYSTEMCTL_STATE: state };

    /** Runs a shell command as the VPS would see it. */
    function sandbox(command: string, input?: string) {
        return spawnSync("unshare", ["--mount", "--propagation", "private", "bash", "-c", `${mounts} && ${command}`], {
            input, encoding: "utf8", env: sandboxEnv, timeout: 60_000,
        });
    }

    /** Runs the step as Pulumi would: `bash -s -- ACTION [ARG]` with the step on stdin. */
    const step = (action: "apply" | "remove" | "check", arg = "") => sandbox(`exec bash -s -- ${action} ${arg}`, renderStepStdin("backup-store", call));
    const onVps = (command: string) => sandbox(command).stdout.trim();
    const existsOnVps = (file: string) => sandbox(`test -e ${file} || test -L ${file}`).status === 0;
    const serviceLog = () => (fs.existsSync(path.join(state, "log")) ? fs.readFileSync(path.join(state, "log"), "utf8") : "");

    /** Every entry the step left: content hash, owner, mode and times. */
    function snapshot(): Record<string, string> {
        const entries: Record<string, string> = {};
        const walk = (dir: string) => {
            for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
                const full = path.join(dir, e.name);
                const s = fs.lstatSync(full);
                const hash = e.isFile() ? createHash("sha256").update(fs.readFileSync(full)).digest("hex") : e.isSymbolicLink() ? fs.readlinkSync(full) : "";
                entries[path.relative(upper, full)] = `${hash} ${s.uid}:${s.gid} ${s.mode.toString(8)} ${s.mtimeMs} ${s.ctimeMs}`;
                if (e.isDirectory()) walk(full);
            }
        };
        walk(upper);
        return entries;
    }

    before(() => {
        if (process.getuid?.() !== 0) throw new Error("the step tests run the script as root, as on the VPS");
        for (const bin of ["/usr/sbin/sshd", "/usr/sbin/useradd", "/usr/sbin/userdel"]) assert.ok(fs.existsSync(bin), `${bin} is missing: run bash scripts/install-test-tools.sh`);
        requireTool("unshare");
        assert.ok(fs.existsSync("/srv"), "/srv is missing: the sandbox puts an overlay on it");
        fs.mkdirSync(stubBin, { recursive: true });
        fs.copyFileSync(path.join(__dirname, "helpers", "systemctl-stub.sh"), path.join(stubBin, "systemctl"));
        fs.chmodSync(path.join(stubBin, "systemctl"), 0o755);
        // sshd runs on the VPS when the step arrives (and has made the directory `sshd -t` insists on).
        fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
        fs.mkdirSync(path.join(state, "active"), { recursive: true });
        fs.writeFileSync(path.join(state, "active", "ssh"), "");
        call = {
            files: {
                [backupSshdDropInPath]: renderBackupSshdDropIn(),
                [backupAuthorizedKeysPath]: renderBackupAuthorizedKeys({ publicKey: fs.readFileSync(`${clientKey}.pub`, "utf8") }),
            },
        };
        ns = createNetns("ovl-backup-step");
    });

    after(() => ns?.destroy());

    it("apply: creates the user, the chroot and the store, installs the files and reloads sshd", () => {
        const r = step("apply");
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /creating the system user overlay-backup/);
        for (const [file, content] of Object.entries(call.files!)) assert.equal(onVps(`cat ${file}`), content.trim());
        assert.match(onVps("getent passwd overlay-backup"), /^overlay-backup:x:\d+:\d+:overlay backup store \(SFTP only\):\/nonexistent:\/usr\/sbin\/nologin$/);
        assert.match(onVps("getent shadow overlay-backup"), /^overlay-backup:[!*]:/, "the user has no password");
        assert.equal(onVps(`stat -c '%U:%G %a %n' ${backupChroot} ${storeOnVps} ${path.dirname(backupAuthorizedKeysPath)} ${backupAuthorizedKeysPath} ${backupSshdDropInPath}`), [
            `root:root 755 ${backupChroot}`,
            `overlay-backup:overlay-backup 700 ${storeOnVps}`,
            `root:root 755 ${path.dirname(backupAuthorizedKeysPath)}`,
            `root:root 644 ${backupAuthorizedKeysPath}`,
            `root:root 644 ${backupSshdDropInPath}`,
        ].join("\n"));
        assert.match(serviceLog(), /^reload ssh$/m);
    });

    it("apply again: changes nothing, reloads nothing and says nothing", () => {
        const entries = snapshot();
        const log = serviceLog();
        const r = step("apply");
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout + r.stderr, "");
        assert.deepEqual(snapshot(), entries);
        assert.equal(serviceLog(), log, "sshd was reloaded");
    });

    it("apply: puts wrong owners and modes right and gives the store's files to the user, without a reload", () => {
        const broken = sandbox([
            `chmod 0775 ${backupChroot}`, `chown 4242:4242 ${storeOnVps}`, `chmod 0755 ${storeOnVps}`,
            `mkdir ${storeOnVps}/old`, `printf one > ${storeOnVps}/old/b1`, `chown -R 4343:4343 ${storeOnVps}/old`,
        ].join(" && "));
        assert.equal(broken.status, 0, broken.stderr);
        const log = serviceLog();
        // The check names both, and changes nothing.
        const entries = snapshot();
        const check = step("check");
        assert.equal(check.status, 0, check.stderr);
        assert.equal(check.stdout, [
            `drift: ${backupChroot}: root:root 775, applied root:root 755`,
            `drift: ${storeOnVps}: 4242:4242 755, applied overlay-backup:overlay-backup 700`,
            "",
        ].join("\n"));
        assert.deepEqual(snapshot(), entries);
        const r = step("apply");
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /set \/srv\/overlay-backup to root:root, mode 0755/);
        assert.match(r.stderr, /set \/srv\/overlay-backup\/backups to overlay-backup:overlay-backup, mode 0700/);
        assert.match(r.stderr, /gave the files in \/srv\/overlay-backup\/backups to overlay-backup/);
        assert.equal(onVps(`stat -c '%U:%G %a' ${backupChroot} ${storeOnVps} ${storeOnVps}/old ${storeOnVps}/old/b1`),
            ["root:root 755", "overlay-backup:overlay-backup 700", "overlay-backup:overlay-backup 755", "overlay-backup:overlay-backup 644"].join("\n"));
        assert.equal(serviceLog(), log, "sshd was reloaded for a directory's mode");
        assert.equal(step("apply").stderr, "", "the repair did not hold");
        assert.equal(step("check").stdout, "", "the check still finds drift");
    });

    it("serves the store it built to the real sftp client, under the machine's own sshd config", async () => {
        // The host's /etc/ssh with the step's drop-in, the user useradd made, the chroot the
        // step made: sshd runs in the sandbox, the client outside it, in a namespace of ours.
        fs.writeFileSync(knownHosts, knownHostsLine("127.0.0.1", 22, fs.readFileSync("/etc/ssh/ssh_host_ed25519_key.pub", "utf8")));
        // bash -c's "$@": the options startSshd adds.
        const sandboxed = ["unshare", "--mount", "--propagation", "private", "bash", "-c", `${mounts} && exec /usr/sbin/sshd -o PidFile=none "$@"`, "sshd"];
        try {
            const log = await startSshd(ns, path.join(scratch, "sandbox-sshd.log"), sandboxed, sandboxEnv);
            const r = roundTrip(ns, "headscale-2.db.age");
            assert.equal(r.status, 0, `${r.stdout}${r.stderr}\n${log()}`);
            assert.equal(fs.readFileSync(path.join(upper, "srv/overlay-backup/backups/headscale-2.db.age"), "utf8"), "headscale-2.db.age version two\n");
        } finally {
            // Its overlay shares the upper directory: gone before the next step touches it.
            for (const pid of ns.pids()) {
                try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
            }
            assert.ok(await waitUntil(() => ns.pids().length === 0, 5000), "sshd's processes outlived it");
        }
    });

    it("a remove refuses a word other than keep or delete, and removes nothing", () => {
        const r = step("remove", "purge");
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /remove takes 'keep' or 'delete', not 'purge'/);
        assert.ok(existsOnVps(backupSshdDropInPath));
    });

    it("remove: takes the user and its sshd rules away, and keeps the backups, owned by root, by default", () => {
        const log = serviceLog();
        const r = step("remove");
        assert.equal(r.status, 0, r.stderr);
        for (const gone of [backupSshdDropInPath, backupAuthorizedKeysPath, path.dirname(backupAuthorizedKeysPath)]) assert.equal(existsOnVps(gone), false, `${gone} is still there`);
        assert.equal(sandbox("getent passwd overlay-backup").status, 2, "the user is still there");
        assert.equal(sandbox("getent group overlay-backup").status, 2, "the group is still there");
        assert.equal(serviceLog().slice(log.length), "reload ssh\n");
        assert.match(r.stderr, /kept the backups in \/srv\/overlay-backup\/backups \(\d+ files\)/);
        assert.equal(onVps(`cat ${storeOnVps}/old/b1`), "one");
        assert.equal(onVps(`find ${storeOnVps} ! -user root -o ! -group root`), "", "a kept backup belongs to the freed uid");
        assert.equal(step("remove", "keep").status, 0, "a second remove fails");
    });

    it("apply after a remove gives the kept backups to the new user", () => {
        const r = step("apply");
        assert.equal(r.status, 0, r.stderr);
        assert.equal(onVps(`find ${storeOnVps} ! -user overlay-backup -o ! -group overlay-backup`), "");
        assert.equal(onVps(`cat ${storeOnVps}/old/b1`), "one");
    });

    it("remove delete: removes the chroot with the backups", () => {
        const r = step("remove", "delete");
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /deleted \/srv\/overlay-backup and the backups in it/);
        for (const gone of [backupChroot, backupSshdDropInPath, backupAuthorizedKeysPath]) assert.equal(existsOnVps(gone), false, `${gone} is still there`);
        assert.equal(sandbox("getent passwd overlay-backup").status, 2);
        assert.equal(step("remove", "delete").status, 0, "a second remove fails");
    });
});
