// One evaluation under the mock runtime, timed from the first line of the program to the
// last registration: `tsx bench/evaluate.ts full|bare`. Prints the milliseconds as JSON.
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import * as pulumi from "@pulumi/pulumi";
import { startRecording } from "../plan/recorder";
import { readStackFile } from "../plan/stackFile";
import { placeholderKeypair } from "../plan/placeholderKeys";

async function main(): Promise<void> {
    const which = process.argv[2];
    const root = path.resolve(__dirname, "..");
    const recorded = await startRecording("overlay", "bench");
    const file = readStackFile(root, "home");
    const secretKey = "overlay:vpsSshPrivateKey";
    pulumi.runtime.setAllConfig({ ...file.values, [secretKey]: placeholderKeypair("bench").privateKeyPem }, [secretKey]);

    const entry = which === "full" ? path.join(root, "index.ts") : which === "bare" ? path.join(__dirname, "bareProgram.ts") : undefined;
    if (!entry) throw new Error("usage: tsx bench/evaluate.ts full|bare");
    const start = performance.now();
    const program: unknown = require(entry);
    if (typeof program === "function") await program();
    await pulumi.runtime.disconnect();
    const ms = performance.now() - start;
    console.log(JSON.stringify({ which, ms, resources: recorded.length }));
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
