import * as pulumi from "@pulumi/pulumi";
import { formatVersion, imageVersion, parseVersion, upgradeProblem } from "../config/upgrade";

/** The stack output that records the deployed headscale version. */
export const versionOutput = "headscaleVersion";

/**
 * Stops the program, before any resource is registered, when headscaleImage would skip a
 * headscale minor version or go back from the deployed one, which this stack's last update
 * recorded in its outputs (read through a reference to the stack itself).
 */
export async function checkHeadscaleUpgrade(image: string): Promise<void> {
    const self = new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`);
    const deployed = (await self.getOutputDetails(versionOutput)).value;
    const previous = typeof deployed === "string" ? parseVersion(deployed) : undefined;
    const next = imageVersion(image);
    if (!previous || !next) return;
    const problem = upgradeProblem(previous, next);
    if (problem) throw new pulumi.RunError(`${problem} (deployed now: ${formatVersion(previous)}, as this stack's ${versionOutput} output records)`);
}
