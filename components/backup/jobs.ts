// The backup and restore jobs' pod specs and manifests. Pure: no Pulumi.
import { containerPaths } from "../headscale/config";

/** Where the jobs find their scripts (a ConfigMap) and credentials (Secrets). */
export const backupPaths = { scripts: "/opt/overlay-backup", credentials: "/etc/overlay-backup", identity: "/etc/overlay-backup-identity" } as const;
export const backupNames = {
    cronJob: "headscale-backup",
    scripts: "headscale-backup-scripts",
    credentials: "headscale-backup",
    identity: "headscale-backup-identity",
} as const;
/** headscale's uid and gid: restored files are theirs. */
export const headscaleUser = 65532;

export interface BackupJobArgs {
    readonly namespace: string;
    /** The image with sh, sqlite3, age and sftp (or Alpine's apk). */
    readonly image: string;
    /** headscale's data claim, which the jobs mount on headscale's node. */
    readonly dataClaim: string;
    /** headscale's pod labels: the job runs next to it, as a ReadWriteOnce volume requires. */
    readonly headscaleSelector: Record<string, string>;
    readonly labels: Record<string, string>;
    /** The backup account on the VPS. */
    readonly store: { readonly host: string; readonly port: number; readonly user: string; readonly dir: string };
    /** How many backups the VPS keeps. */
    readonly keep: number;
}

/** What a job does: a backup, or a restore of one backup ("latest" or its name). */
export type JobAction = { readonly kind: "backup" } | { readonly kind: "restore"; readonly name: string };

/** The pod of a backup job (the CronJob's and the one before an upgrade), or of a restore job. */
export function jobPodSpec(args: BackupJobArgs, action: JobAction) {
    const restore = action.kind === "restore";
    return {
        restartPolicy: "Never",
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        affinity: {
            podAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: args.headscaleSelector }, topologyKey: "kubernetes.io/hostname" }],
            },
        },
        securityContext: { seccompProfile: { type: "RuntimeDefault" } },
        containers: [{
            name: action.kind,
            image: args.image,
            command: ["/bin/sh", `${backupPaths.scripts}/${action.kind}.sh`, ...(restore ? [action.name] : [])],
            env: [
                { name: "DATA_DIR", value: containerPaths.data },
                { name: "CREDENTIALS_DIR", value: backupPaths.credentials },
                { name: "STORE_HOST", value: args.store.host },
                { name: "STORE_PORT", value: String(args.store.port) },
                { name: "STORE_USER", value: args.store.user },
                { name: "STORE_DIR", value: args.store.dir },
                ...(restore
                    ? [{ name: "IDENTITY_FILE", value: `${backupPaths.identity}/identity` }, { name: "DATA_OWNER", value: `${headscaleUser}:${headscaleUser}` }]
                    : [{ name: "KEEP", value: String(args.keep) }]),
            ],
            // Root, for apk on a bare Alpine image and to read and write headscale's files;
            // with only the capabilities that needs.
            securityContext: {
                runAsUser: 0,
                runAsNonRoot: false,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"], add: ["CHOWN", "DAC_OVERRIDE", "FOWNER"] },
            },
            // The job's last lines become its pod's termination message, which `pulumi up` quotes.
            terminationMessagePolicy: "FallbackToLogsOnError",
            resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { cpu: "1", memory: "256Mi" } },
            volumeMounts: [
                { name: "data", mountPath: containerPaths.data },
                { name: "scripts", mountPath: backupPaths.scripts, readOnly: true },
                { name: "credentials", mountPath: backupPaths.credentials, readOnly: true },
                ...(restore ? [{ name: "identity", mountPath: backupPaths.identity, readOnly: true }] : []),
                { name: "tmp", mountPath: "/tmp" },
            ],
        }],
        volumes: [
            { name: "data", persistentVolumeClaim: { claimName: args.dataClaim } },
            { name: "scripts", configMap: { name: backupNames.scripts, defaultMode: 0o555 } },
            { name: "credentials", secret: { secretName: backupNames.credentials, defaultMode: 0o400 } },
            ...(restore ? [{ name: "identity", secret: { secretName: backupNames.identity, defaultMode: 0o400 } }] : []),
            { name: "tmp", emptyDir: {} },
        ],
    };
}

/** The CronJob's job: a few tries, then it waits for the next schedule. */
export function backupJobSpec(args: BackupJobArgs) {
    return {
        backoffLimit: 2,
        activeDeadlineSeconds: 1800,
        template: { metadata: { labels: args.labels }, spec: jobPodSpec(args, { kind: "backup" }) },
    };
}

/** A Job run once by `pulumi up`: the backup before an upgrade, or a restore. */
export function oneOffJob(args: BackupJobArgs, action: JobAction) {
    const restore = action.kind === "restore";
    return {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { generateName: restore ? "headscale-restore-" : "headscale-backup-before-upgrade-", namespace: args.namespace, labels: args.labels },
        spec: {
            // A refused backup stays refused; a backup may meet a passing network fault.
            backoffLimit: restore ? 0 : 1,
            activeDeadlineSeconds: 1800,
            ttlSecondsAfterFinished: 7 * 24 * 3600,
            template: { metadata: { labels: args.labels }, spec: jobPodSpec(args, action) },
        },
    };
}

/** headscale's init container: moves a staged restore into place before headscale starts. */
export function restoreInitContainer(image: string) {
    return {
        name: "restore",
        image,
        command: ["/bin/sh", `${backupPaths.scripts}/apply-restore.sh`],
        env: [{ name: "DATA_DIR", value: containerPaths.data }],
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } },
        resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "200m", memory: "64Mi" } },
        volumeMounts: [
            { name: "data", mountPath: containerPaths.data },
            { name: "backup-scripts", mountPath: backupPaths.scripts, readOnly: true },
        ],
    };
}
