// The roaming device: a real tailscaled in the device namespace, which reaches home only
// through the VPS, and what it can reach.
import * as fs from "node:fs";
import * as path from "node:path";
import { captureOutput, waitUntil } from "../../helpers/netns";
import { requireTool } from "../../helpers/tools";
import { E2e, hostname, lanUrl } from "../context";
import { exec, mustExec, Result } from "../exec";
import { vpsAddress } from "../network";

export interface Device {
    readonly stateDir: string;
    readonly socket: string;
    log(): string;
}

/** Starts tailscaled with its state in stateDir (kept across restarts); it trusts the test CA. */
export async function startDevice(e2e: E2e, stateDir: string): Promise<Device> {
    fs.mkdirSync(stateDir, { recursive: true });
    const socket = path.join(stateDir, "tailscaled.sock");
    const daemon = e2e.world.device.start(requireTool("tailscaled"), [`--statedir=${stateDir}`, `--socket=${socket}`], deviceEnv(e2e));
    const device = { stateDir, socket, log: captureOutput(daemon) };
    if (!(await waitUntil(() => fs.existsSync(socket), 20_000))) throw new Error(`tailscaled did not start:\n${device.log()}`);
    return device;
}

export function deviceEnv(e2e: E2e): NodeJS.ProcessEnv {
    return { SSL_CERT_FILE: e2e.tls.ca, TS_NO_LOGS_NO_SUPPORT: "true" };
}

export function tailscale(e2e: E2e, ...args: string[]): Promise<Result> {
    return exec(e2e.world.device, requireTool("tailscale"), [`--socket=${e2e.device!.socket}`, ...args], { timeoutMs: 60_000 });
}

/** What the device gets from a URL, or undefined. */
export async function deviceReaches(e2e: E2e, url: string, maxTimeS = 5): Promise<string | undefined> {
    const r = await exec(e2e.world.device, "curl", ["-sf", "--max-time", String(maxTimeS), url], { timeoutMs: (maxTimeS + 5) * 1000 });
    return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Bounded: polls until the device gets the LAN service's answer; returns the time taken. */
export async function untilDeviceReachesLan(e2e: E2e, timeoutMs: number): Promise<number> {
    const started = Date.now();
    const ok = await waitUntil(async () => (await deviceReaches(e2e, lanUrl, 3)) === "lan-service", timeoutMs, 250);
    if (!ok) throw new Error(`the device did not reach ${lanUrl} within ${timeoutMs / 1000} s\n${e2e.device?.log().slice(-2000)}`);
    return Date.now() - started;
}

/**
 * Polls the LAN from the device until stopped, or for maxMs at most: how many tries got
 * through, how many did not, and the longest run without an answer. The harness stops any
 * still running when it tears down (a test that failed before its stop()).
 */
export function watchLan(e2e: E2e, maxMs = 600_000): LanWatch {
    let running = true;
    let ok = 0;
    let failed = 0;
    let lastOk = Date.now();
    let longestGapMs = 0;
    const started = Date.now();
    const loop = (async () => {
        while (running && Date.now() - started < maxMs) {
            const tried = Date.now();
            if ((await deviceReaches(e2e, lanUrl, 3)) === "lan-service") {
                ok++;
                longestGapMs = Math.max(longestGapMs, Date.now() - lastOk);
                lastOk = Date.now();
            } else {
                failed++;
            }
            await new Promise((resolve) => setTimeout(resolve, Math.max(0, 500 - (Date.now() - tried))));
        }
    })();
    const watch: LanWatch = {
        async stop() {
            running = false;
            await loop;
            e2e.loops.delete(watch);
            return { ok, failed, longestGapMs: Math.max(longestGapMs, failed ? Date.now() - lastOk : 0) };
        },
    };
    e2e.loops.add(watch);
    return watch;
}

export interface LanWatch {
    stop(): Promise<{ ok: number; failed: number; longestGapMs: number }>;
}

/** headscale's /health through the VPS (nginx, then the tunnel), from the device. */
export async function headscaleThroughVps(e2e: E2e): Promise<boolean> {
    const r = await exec(e2e.world.device, "curl", ["-sf", "--max-time", "3", "--cacert", e2e.tls.ca, `https://${hostname}/health`], { timeoutMs: 10_000 });
    return r.status === 0;
}

/** Which of the VPS's ports answer, as a stranger on the internet sees them (probe.js). */
export async function probe(e2e: E2e, ports: readonly string[]): Promise<Record<string, boolean>> {
    const r = await mustExec(e2e.world.device, process.execPath, [path.join(__dirname, "..", "probe.js"), vpsAddress, hostname, "3000", ...ports]);
    return JSON.parse(r.stdout);
}
