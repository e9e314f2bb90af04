// Builds the test cluster's images (images.ts) as OCI archives, with debootstrap from Debian's
// packages (the mirror this machine's apt uses) and umoci, and the test's CA that the
// tailscale image trusts. Each archive is cached under DIR with a stamp of everything it is
// made from: an unchanged image is not rebuilt. Run by `npm run test:e2e` before the tests:
//   tsx tests/e2e/node/buildImages.ts [DIR]      (default: <tools>/images)
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { repoRoot } from "../../helpers/stack";
import { requireTool, toolsDir } from "../../helpers/tools";
import { ImageDefinition, images, LayoutEntry } from "./images";

export const defaultImagesDir = path.join(toolsDir, "images");

/** Where an image's archive is, in DIR. */
export function imageArchive(dir: string, image: ImageDefinition): string {
    return path.join(dir, `${image.name}.oci.tar`);
}

/** The test's CA (valid for ten years, for names under example.com only): the tailscale image trusts it. */
export function testCa(dir: string): { readonly certificate: string; readonly key: string } {
    return { certificate: path.join(dir, "test-ca", "ca.pem"), key: path.join(dir, "test-ca", "ca.key") };
}

function say(message: string): void {
    process.stderr.write(`build-images: ${message}\n`);
}

function run(command: string, args: readonly string[], options: { cwd?: string; log?: string } = {}): void {
    const r = spawnSync(command, args, { cwd: options.cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (options.log) fs.writeFileSync(options.log, `${r.stdout ?? ""}${r.stderr ?? ""}`);
    if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${(r.stderr ?? "").slice(-3000)}${options.log ? `\n(see ${options.log})` : ""}`);
}

function makeTestCa(dir: string): void {
    const ca = testCa(dir);
    if (fs.existsSync(ca.certificate) && fs.existsSync(ca.key)) return;
    fs.mkdirSync(path.dirname(ca.certificate), { recursive: true, mode: 0o700 });
    const config = path.join(path.dirname(ca.certificate), "openssl.cnf");
    fs.writeFileSync(config, [
        "[req]", "distinguished_name = dn", "[dn]",
        "[ca]", "basicConstraints = critical, CA:TRUE", "keyUsage = critical, keyCertSign, cRLSign",
        "nameConstraints = critical, permitted;DNS:example.com", "subjectKeyIdentifier = hash", "",
    ].join("\n"));
    run(requireTool("openssl"), ["req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", ca.key, "-out", ca.certificate, "-days", "3650",
        "-subj", "/CN=overlay e2e test CA", "-config", config, "-extensions", "ca"]);
}

/** The program a layout entry installs, from the test's tools. */
function programPath(name: string): string {
    return requireTool(name);
}

/** Everything an image is made from, hashed: its root, layout and config, this builder, its programs, the CA. */
function stampOf(image: ImageDefinition, dir: string): string {
    const hash = createHash("sha256");
    hash.update(JSON.stringify({ root: image.root, layout: image.layout, config: image.config, trustsTestCa: image.trustsTestCa }));
    hash.update(fs.readFileSync(__filename));
    for (const entry of image.layout) if ("program" in entry) hash.update(fs.readFileSync(programPath(entry.program)));
    if (image.trustsTestCa) hash.update(fs.readFileSync(testCa(dir).certificate));
    return hash.digest("hex");
}

/** A Debian root with these packages (minbase), debs cached in DIR/debs. */
function debootstrap(image: ImageDefinition, target: string, dir: string): void {
    const root = image.root!;
    const mirror = execFileSync("bash", [path.join(repoRoot, "scripts", "debian-mirror.sh")], { encoding: "utf8" }).trim();
    const cache = path.join(dir, "debs");
    fs.mkdirSync(cache, { recursive: true });
    run(requireTool("debootstrap"), ["--variant=minbase", `--cache-dir=${cache}`, ...(root.packages.length ? [`--include=${root.packages.join(",")}`] : []),
        root.debian, target, mirror], { log: path.join(dir, `${image.name}.debootstrap.log`) });
    // As an image ships it: no package lists, caches or logs.
    for (const leftover of ["var/cache/apt/archives", "var/lib/apt/lists", "var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin", "var/log"]) {
        const p = path.join(target, leftover);
        if (!fs.existsSync(p)) continue;
        if (fs.statSync(p).isDirectory()) for (const f of fs.readdirSync(p)) fs.rmSync(path.join(p, f), { recursive: true, force: true });
        else fs.rmSync(p, { force: true });
    }
}

function applyLayout(rootfs: string, system: string | undefined, entry: LayoutEntry): void {
    const target = path.join(rootfs, entry.path);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if ("directory" in entry) {
        fs.mkdirSync(target, { recursive: true });
        fs.chmodSync(target, entry.mode);
        if (entry.owner !== undefined) fs.chownSync(target, entry.owner, entry.owner);
    } else if ("symlink" in entry) {
        fs.rmSync(target, { force: true });
        fs.symlinkSync(entry.symlink, target);
    } else if ("copyFrom" in entry) {
        if (!system) throw new Error(`${entry.path}: nothing to copy ${entry.copyFrom} from`);
        // -L: a file the root has as a link (os-release) arrives as the file.
        run("cp", ["-aL", path.join(system, entry.copyFrom), target]);
    } else if ("program" in entry) {
        fs.copyFileSync(programPath(entry.program), target);
        fs.chmodSync(target, entry.mode);
        if (entry.capabilities) run(requireTool("setcap"), [entry.capabilities, target]);
    } else {
        fs.writeFileSync(target, entry.text);
        fs.chmodSync(target, entry.mode);
    }
}

/** The image's OCI archive, built in a scratch directory and moved into place. */
function build(image: ImageDefinition, dir: string): void {
    const umoci = requireTool("umoci");
    const work = fs.mkdtempSync(path.join(dir, `.${image.name}-`));
    try {
        let system: string | undefined;
        if (image.root) {
            system = path.join(work, "system");
            debootstrap(image, system, dir);
        }
        const layout = path.join(work, "layout");
        const bundle = path.join(work, "bundle");
        const tag = "image";
        run(umoci, ["init", "--layout", layout]);
        run(umoci, ["new", "--image", `${layout}:${tag}`]);
        run(umoci, ["unpack", "--image", `${layout}:${tag}`, bundle]);
        const rootfs = path.join(bundle, "rootfs");
        if (image.root?.keep === "system") {
            fs.rmSync(rootfs, { recursive: true });
            fs.renameSync(system!, rootfs);
            system = rootfs;
        }
        for (const entry of image.layout) applyLayout(rootfs, system, entry);
        if (image.trustsTestCa) fs.appendFileSync(path.join(rootfs, "etc/ssl/certs/ca-certificates.crt"), fs.readFileSync(testCa(dir).certificate));
        run(umoci, ["repack", "--image", `${layout}:${tag}`, bundle]);
        const c = image.config;
        run(umoci, ["config", "--image", `${layout}:${tag}`,
            "--clear=config.env", "--clear=config.entrypoint", "--clear=config.cmd",
            ...c.Env.flatMap((e) => ["--config.env", e]),
            ...(c.Entrypoint ?? []).flatMap((a) => ["--config.entrypoint", a]),
            ...(c.Cmd ?? []).flatMap((a) => ["--config.cmd", a]),
            ...(c.User ? ["--config.user", c.User] : []),
            ...(c.WorkingDir ? ["--config.workingdir", c.WorkingDir] : []),
        ]);
        run(umoci, ["gc", "--layout", layout]);
        const archive = imageArchive(dir, image);
        run("tar", ["-C", layout, "-cf", `${archive}.partial`, "."]);
        fs.renameSync(`${archive}.partial`, archive);
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}

/** Builds every image whose stamp does not match; returns the archives by image name. */
export function buildImages(dir = defaultImagesDir): Map<string, string> {
    if (process.getuid?.() !== 0) throw new Error("building the images needs root (debootstrap, file ownership in the layers)");
    fs.mkdirSync(dir, { recursive: true });
    makeTestCa(dir);
    const archives = new Map<string, string>();
    for (const image of images) {
        const archive = imageArchive(dir, image);
        const stampFile = `${archive}.stamp`;
        const stamp = stampOf(image, dir);
        if (!fs.existsSync(archive) || !fs.existsSync(stampFile) || fs.readFileSync(stampFile, "utf8").trim() !== stamp) {
            const started = Date.now();
            say(`building ${image.name} (${image.references.join(", ")})`);
            build(image, dir);
            fs.writeFileSync(stampFile, `${stamp}\n`);
            say(`built ${image.name} in ${((Date.now() - started) / 1000).toFixed(0)} s: ${(fs.statSync(archive).size / 1e6).toFixed(0)} MB`);
        }
        archives.set(image.name, archive);
    }
    return archives;
}

if (require.main === module) {
    const dir = process.argv[2] ?? defaultImagesDir;
    const started = Date.now();
    buildImages(dir);
    say(`the images are up to date in ${dir} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}
