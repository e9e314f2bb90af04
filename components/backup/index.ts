import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { labelsFor } from "../labels";
import { knownHostsLine } from "../router/tunnel";
import { stdinScriptCommand } from "../shell";
import { ageKeyFromBytes, ageKeyFromIdentity } from "./ageKey";
import { BackupJobArgs, backupJobSpec, backupNames, oneOffJob } from "./jobs";

export interface HeadscaleBackupsArgs {
    readonly namespace: pulumi.Input<string>;
    readonly jobs: Omit<BackupJobArgs, "namespace" | "labels">;
    /** Cron schedule, UTC. */
    readonly schedule: string;
    /** The backup account's SSH key (secret) and the VPS host key it pins. */
    readonly storePrivateKey: pulumi.Input<string>;
    readonly storeHostKey: string;
    /** The running image: a change takes a backup before the StatefulSet changes. */
    readonly headscaleImage: string;
    /** The age identity to encrypt to (secret); unset: one generated here. */
    readonly identity?: pulumi.Output<string>;
    /** How the one-off jobs reach the cluster: "" for kubectl's defaults. */
    readonly kubeconfig: string;
    readonly context: string;
    /** What the one-off jobs wait for: the backup account on the VPS. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

const scriptsDir = path.join(__dirname, "scripts");
const jobScripts = ["lib.sh", "backup.sh", "restore.sh", "apply-restore.sh"];
const runJobScript = fs.readFileSync(path.join(scriptsDir, "run-job.sh"), "utf8");

/**
 * headscale's backups: a CronJob that copies the database and keys while headscale runs,
 * encrypts them at home with an age key that Pulumi generated, and stores them on the VPS;
 * a backup before every change of headscale's image; and, when asked, a restore.
 */
export class HeadscaleBackups extends pulumi.ComponentResource {
    /** "age1...": what the backups are encrypted to. */
    public readonly recipient: pulumi.Output<string>;
    /** "AGE-SECRET-KEY-1...": what decrypts them (secret). */
    public readonly identity: pulumi.Output<string>;
    /** Runs before the StatefulSet may change its image. */
    public readonly beforeUpgrade: command.local.Command;
    private readonly jobArgs: pulumi.Output<BackupJobArgs>;
    private readonly backupsName: string;
    private readonly args: HeadscaleBackupsArgs;

    constructor(name: string, args: HeadscaleBackupsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("overlay:components:HeadscaleBackups", name, {}, opts);
        this.backupsName = name;
        this.args = args;
        const parent = { parent: this };
        const labels = labelsFor(backupNames.cronJob, "backup");
        const ns = args.namespace;

        const ageKey = args.identity
            ? args.identity.apply(ageKeyFromIdentity)
            : new random.RandomBytes(`${name}-age-key`, { length: 32 }, parent).base64.apply((b64) => ageKeyFromBytes(Buffer.from(b64, "base64")));
        // The recipient is public; only the identity stays secret.
        this.recipient = pulumi.unsecret(ageKey.apply((k) => k.recipient));
        this.identity = pulumi.secret(ageKey.apply((k) => k.identity));

        const scripts = new k8s.core.v1.ConfigMap(`${name}-scripts`, {
            metadata: { name: backupNames.scripts, namespace: ns, labels },
            data: Object.fromEntries(jobScripts.map((f) => [f, fs.readFileSync(path.join(scriptsDir, f), "utf8")])),
        }, parent);
        const credentials = new k8s.core.v1.Secret(`${name}-credentials`, {
            metadata: { name: backupNames.credentials, namespace: ns, labels },
            type: "Opaque",
            stringData: {
                "ssh-key": pulumi.secret(args.storePrivateKey),
                known_hosts: knownHostsLine(args.jobs.store.host, args.jobs.store.port, args.storeHostKey),
                recipient: pulumi.interpolate`${this.recipient}\n`,
            },
        }, parent);

        const jobArgs = pulumi.output(ns).apply((namespace): BackupJobArgs => ({ ...args.jobs, namespace, labels }));
        const cronJob = new k8s.batch.v1.CronJob(`${name}-cronjob`, {
            metadata: { name: backupNames.cronJob, namespace: ns, labels },
            spec: {
                schedule: args.schedule,
                timeZone: "Etc/UTC",
                concurrencyPolicy: "Forbid",
                startingDeadlineSeconds: 3600,
                successfulJobsHistoryLimit: 3,
                failedJobsHistoryLimit: 3,
                jobTemplate: { metadata: { labels }, spec: jobArgs.apply(backupJobSpec) },
            },
        }, { ...parent, dependsOn: [scripts, credentials] });

        this.jobArgs = jobArgs;
        this.beforeUpgrade = new command.local.Command(`${name}-before-upgrade`, {
            create: runJobCommand(args, "backup"),
            stdin: runJobStdin(jobArgs.apply((a) => oneOffJob(a, { kind: "backup" }))),
            triggers: [args.headscaleImage],
            logging: "stderr",
            addPreviousOutputInEnv: false,
        }, { ...parent, dependsOn: [cronJob, ...args.after] });

        this.registerOutputs({ recipient: this.recipient, identity: this.identity });
    }

    /**
     * A restore of a backup ("latest" or its name) by the next `pulumi up`, once per value:
     * after `after` (headscale's StatefulSet, whose init container moves the backup into place).
     */
    public restore(backup: string, after: pulumi.Resource[]): command.local.Command {
        const name = this.backupsName;
        const identity = new k8s.core.v1.Secret(`${name}-identity`, {
            metadata: { name: backupNames.identity, namespace: this.args.namespace, labels: labelsFor(backupNames.cronJob, "backup") },
            type: "Opaque",
            stringData: { identity: pulumi.interpolate`${this.identity}\n` },
        }, { parent: this });
        return new command.local.Command(`${name}-restore`, {
            create: runJobCommand(this.args, "restore"),
            stdin: runJobStdin(this.jobArgs.apply((a) => oneOffJob(a, { kind: "restore", name: backup }))),
            triggers: [backup],
            logging: "stderr",
            addPreviousOutputInEnv: false,
        }, { parent: this, dependsOn: [identity, this.beforeUpgrade, ...after] });
    }
}

/** run-job.sh's command line: the script comes on stdin. */
function runJobCommand(args: HeadscaleBackupsArgs, kind: "backup" | "restore"): pulumi.Output<string> {
    return pulumi.output(args.namespace).apply((namespace) => stdinScriptCommand([args.kubeconfig, args.context, namespace, kind, "900"]));
}

/** run-job.sh, then the job's manifest, which the script reads with `cat`. */
function runJobStdin(job: pulumi.Input<object>): pulumi.Output<string> {
    return pulumi.output(job).apply((j) => `${runJobScript}\n# ---- the job ----\n${JSON.stringify(j)}\n`);
}
