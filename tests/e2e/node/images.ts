// The container images the test cluster runs, each rebuilt here as its upstream defines it:
// the image config (Entrypoint, Cmd, Env, User, WorkingDir) copied from the upstream build
// definition at the pinned tag, the programs at upstream's paths (built from the Go module
// proxy, or Debian's packages), and a root filesystem from Debian's packages where upstream
// has one. The registries cannot be reached here; each image is imported into the node's
// containerd under exactly the references the stack config and the cluster name, so the
// program runs unchanged. The README's table of images is generated from this one list.
import { keys } from "../../../config/keys";

export type DebianRelease = "bookworm" | "trixie";

/** An OCI image config: the fields a container runtime reads. */
export interface ImageConfig {
    readonly Entrypoint?: readonly string[];
    readonly Cmd?: readonly string[];
    readonly Env: readonly string[];
    readonly User?: string;
    readonly WorkingDir?: string;
}

/** A file, directory or link laid down in the root filesystem after its packages. */
export type LayoutEntry =
    | { readonly path: string; readonly program: string; readonly mode: number; readonly capabilities?: string }
    | { readonly path: string; readonly text: string; readonly mode: number }
    | { readonly path: string; readonly directory: true; readonly mode: number; readonly owner?: number }
    | { readonly path: string; readonly symlink: string }
    | { readonly path: string; readonly copyFrom: string };

export interface ImageDefinition {
    /** A short name, for files and messages. */
    readonly name: string;
    /** Every reference pods name it by: imported under each. */
    readonly references: readonly string[];
    /**
     * The root filesystem: debootstrap of a Debian release with these packages (minbase), all of
     * it ("system"), or only the layout, which may copy a few files from it ("files"). None: the
     * layout alone (FROM scratch).
     */
    readonly root?: { readonly debian: DebianRelease; readonly packages: readonly string[]; readonly keep: "system" | "files" };
    readonly layout: readonly LayoutEntry[];
    /** The test CA joins the root's trust store (the program's TLS endpoint uses it). */
    readonly trustsTestCa?: boolean;
    readonly config: ImageConfig;
    /** The upstream files each config value and path comes from: repository, path, tag. */
    readonly upstream: readonly string[];
    /** What is reproduced, and what cannot be: the README's table. */
    readonly reproduced: string;
    readonly differs: string;
}

const path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const nonroot = 65532;

/** distroless's /etc/passwd, /etc/group and nsswitch.conf (common/BUILD.bazel, static/nsswitch.conf). */
const distrolessFiles: readonly LayoutEntry[] = [
    { path: "/etc/passwd", mode: 0o644, text: "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" },
    { path: "/etc/group", mode: 0o644, text: "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n" },
    { path: "/etc/nsswitch.conf", mode: 0o644, text: "passwd:         compat\ngroup:          compat\nshadow:         compat\ngshadow:        files\n\nhosts:          files dns\nnetworks:       files\n\nprotocols:      db files\nservices:       db files\nethers:         db files\nrpc:            db files\n\nnetgroup:       nis\n" },
    { path: "/tmp", directory: true, mode: 0o1777 },
    { path: "/root", directory: true, mode: 0o700 },
    { path: "/home", directory: true, mode: 0o755 },
    { path: "/home/nonroot", directory: true, mode: 0o700, owner: nonroot },
    { path: "/etc/ssl/certs/ca-certificates.crt", copyFrom: "/etc/ssl/certs/ca-certificates.crt" },
    { path: "/usr/share/zoneinfo", copyFrom: "/usr/share/zoneinfo" },
    { path: "/etc/services", copyFrom: "/etc/services" },
    { path: "/etc/os-release", copyFrom: "/usr/lib/os-release" },
];
const distrolessPackages = ["ca-certificates", "tzdata", "netbase"];

/** The image the stack config names by default, for a key. */
function configured(key: "headscaleImage" | "tailscaleImage" | "tunnelImage" | "backupImage"): string {
    return keys[key].default;
}

export const images: readonly ImageDefinition[] = [
    {
        name: "headscale",
        references: [configured("headscaleImage")],
        root: { debian: "trixie", packages: distrolessPackages, keep: "files" },
        layout: [
            ...distrolessFiles,
            // ko's kodata layer: /var, /var/run and /var/run/ko, each 0555.
            { path: "/var", directory: true, mode: 0o555 },
            { path: "/var/run", directory: true, mode: 0o555 },
            { path: "/var/run/ko", directory: true, mode: 0o555 },
            { path: "/ko-app", directory: true, mode: 0o555 },
            { path: "/ko-app/headscale", program: "headscale", mode: 0o555 },
        ],
        config: {
            Entrypoint: ["/ko-app/headscale"],
            Env: [`PATH=${path}:/ko-app`, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "KO_DATA_PATH=/var/run/ko"],
            User: "0",
            WorkingDir: "/",
        },
        upstream: [
            "juanfont/headscale `.goreleaser.yml` @ v0.29.2 (`kos`: ko on `gcr.io/distroless/base-debian13`, CGO_ENABLED=0)",
            "ko-build/ko `pkg/build/gobuild.go` (Entrypoint `/ko-app/headscale`, `:/ko-app` on PATH, `KO_DATA_PATH`, the 0555 kodata directories)",
            "GoogleContainerTools/distroless `static/static.bzl`, `common/BUILD.bazel` (User 0, WorkingDir /, PATH, SSL_CERT_FILE, passwd, group, /tmp 1777)",
        ],
        reproduced: "headscale 0.29.2 at `/ko-app/headscale` (CGO_ENABLED=0, -mod=readonly, -s -w); the config; distroless's passwd, group, nsswitch.conf, /tmp, /home/nonroot; CA bundle, zoneinfo and /etc/services from Debian 13's packages; no shell",
        differs: "base-debian13's shared libraries (glibc, libssl, zlib, libzstd) are left out: the static binary loads none",
    },
    {
        name: "tailscale",
        references: [configured("tailscaleImage")],
        root: { debian: "bookworm", packages: ["ca-certificates", "iptables", "iproute2", "iputils-ping"], keep: "system" },
        layout: [
            // Dockerfile.base: iptables and ip6tables are links to the legacy ones.
            { path: "/usr/sbin/iptables", symlink: "/usr/sbin/iptables-legacy" },
            { path: "/usr/sbin/ip6tables", symlink: "/usr/sbin/ip6tables-legacy" },
            { path: "/usr/local/bin", directory: true, mode: 0o555 },
            { path: "/usr/local/bin/tailscale", program: "tailscale", mode: 0o555 },
            { path: "/usr/local/bin/tailscaled", program: "tailscaled", mode: 0o555 },
            { path: "/usr/local/bin/containerboot", program: "containerboot", mode: 0o555 },
        ],
        trustsTestCa: true,
        config: { Cmd: ["/usr/local/bin/containerboot"], Env: [`PATH=${path}`], WorkingDir: "/" },
        upstream: [
            "tailscale/tailscale `build_docker.sh` @ v1.102.5 (mkctr: the three binaries at `/usr/local/bin`, Cmd `/usr/local/bin/containerboot`, tags ts_kube,ts_package_container, CGO_ENABLED=0)",
            "tailscale/tailscale `Dockerfile.base` @ v1.102.5 (alpine:3.22 with ca-certificates, iptables, iptables-legacy, iproute2, ip6tables, iputils; iptables and ip6tables linked to the legacy ones; no USER)",
        ],
        reproduced: "tailscale, tailscaled and containerboot 1.102.5 at `/usr/local/bin` (mode 0555); Cmd; root; iptables and ip6tables linked to iptables-legacy; iproute2, iputils and CA certificates",
        differs: "Debian 12 instead of Alpine 3.22 (glibc, no busybox or apk; iptables 1.8.9, not 1.8.11); built with stock Go, not tailscale's Go fork; the version stamp has no commit; the test's CA is in the trust store",
    },
    {
        name: "tunnel",
        references: [configured("tunnelImage")],
        root: { debian: "trixie", packages: ["ca-certificates", "curl", "netbase", "wget", "openssh-client", "procps"], keep: "system" },
        layout: [],
        config: { Cmd: ["bash"], Env: [`PATH=${path}`] },
        upstream: [
            "docker-library/buildpack-deps `debian/trixie/scm/Dockerfile` and `debian/trixie/curl/Dockerfile` @ 8330ca1 (debian:trixie, then ca-certificates, curl, gnupg, netbase, sq, wget, then git, mercurial, openssh-client, subversion, procps)",
            "docker-library/repo-info `repos/buildpack-deps/remote/trixie-scm.md` @ 5cf9cef (the digest, the build of 2026-08-25; Default Command `[\"bash\"]`)",
        ],
        reproduced: "Debian 13 with openssh-client, procps, curl, wget, netbase and CA certificates; Cmd `bash`; root; PATH",
        differs: "git, Mercurial, Subversion, gnupg and sq are left out: the tunnel runs none of them; the image's content digest is not upstream's (it is imported under upstream's reference)",
    },
    {
        name: "backup",
        references: [configured("backupImage")],
        root: { debian: "bookworm", packages: ["sqlite3", "age", "openssh-client"], keep: "system" },
        layout: [],
        config: { Cmd: ["/bin/sh"], Env: [`PATH=${path}`], WorkingDir: "/" },
        upstream: [
            "alpinelinux/docker-alpine `x86_64/Dockerfile` on branch v3.22 @ aff8a4cf, 3.22.5 (FROM scratch, the minirootfs, CMD `/bin/sh`; BuildKit sets PATH and WorkingDir /)",
            "alpinelinux/aports `main/sqlite/APKBUILD`, `community/age/APKBUILD`, `main/openssh/APKBUILD` on 3.22 (what the jobs' `apk add` brings: /usr/bin/sqlite3, /usr/bin/age, sftp)",
        ],
        reproduced: "Cmd `/bin/sh`; root; PATH; the tools the jobs need at /usr/bin: sqlite3, age, sftp and ssh",
        differs: "Debian 12 instead of Alpine 3.22: no apk, so the image ships the tools the jobs would add with apk from Alpine's repository (which the cluster cannot reach here); /bin/sh is dash, not busybox",
    },
    {
        name: "coredns",
        references: ["registry.k8s.io/coredns/coredns:v1.15.0"],
        root: { debian: "bookworm", packages: distrolessPackages, keep: "files" },
        layout: [
            ...distrolessFiles,
            { path: "/coredns", program: "coredns", mode: 0o755, capabilities: "cap_net_bind_service=+ep" },
        ],
        config: { Entrypoint: ["/coredns"], Env: [`PATH=${path}`, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"], User: "65532:65532", WorkingDir: "/" },
        upstream: [
            "coredns/coredns `Dockerfile` @ v1.15.0 (distroless static-debian12:nonroot, `/coredns` with cap_net_bind_service=+ep, USER 65532:65532, WORKDIR /, ENTRYPOINT `/coredns`)",
            "coredns/coredns `Makefile` @ v1.15.0 (CGO_ENABLED=0, -tags grpcnotrace, -s -w)",
        ],
        reproduced: "CoreDNS 1.15.0 at `/coredns` with its file capability; the config; distroless's files as for headscale, from Debian 12's packages",
        differs: "the commit stamp is the version (a module zip has no commit)",
    },
    {
        name: "pause",
        references: ["registry.k8s.io/pause:3.10.1"],
        layout: [{ path: "/pause", program: "pause", mode: 0o755 }],
        config: { Entrypoint: ["/pause"], Env: [`PATH=${path}`], User: "65535:65535", WorkingDir: "/" },
        upstream: ["kubernetes/kubernetes `build/pause/Dockerfile` and `build/pause/Makefile` @ v1.34.4 (FROM scratch, `/pause` from pause.c built -Os -static, USER 65535:65535, ENTRYPOINT `/pause`)"],
        reproduced: "pause.c from the Kubernetes 1.34.4 module, built static with Debian's gcc; the config",
        differs: "the version string has no git revision",
    },
];

/** The references of every image, for a message. */
export function imageReferences(): string[] {
    return images.flatMap((i) => i.references);
}

export const imageTableStart = "<!-- e2e-images:start (generated from tests/e2e/node/images.ts by npm run docs:config) -->";
export const imageTableEnd = "<!-- e2e-images:end -->";

/** The README's table of the test's images: where each comes from, what is reproduced, what is not. */
export function renderImageTable(): string {
    const cell = (text: string) => text.replace(/\|/g, "\\|");
    const rows = images.map((i) => `| ${i.references.map((r) => `\`${r.replace(/@sha256:([0-9a-f]{12})[0-9a-f]+/, "@sha256:$1…")}\``).join("<br>")} | ${cell(i.upstream.join("; "))} | ${cell(i.reproduced)} | ${cell(i.differs)} |`);
    return [imageTableStart, "| Image | Upstream definition (repository, file, tag) | Reproduced | Not reproduced |", "|---|---|---|---|", ...rows, imageTableEnd].join("\n");
}
