// npm run plan -- [--stack NAME]: the offline plan of a stack (default: home).
import * as path from "node:path";
import { parseArgs } from "node:util";
import { isDate, todayVariable } from "../config/clock";
import { runPlan } from "./plan";
import { StackFileError } from "./stackFile";

const usage = "usage: npm run plan -- [--stack NAME] [--date YYYY-MM-DD]   (reads Pulumi.NAME.yaml, writes out/NAME/; the date defaults to today)";

async function main(): Promise<number> {
    let stack: string;
    try {
        const { values } = parseArgs({ options: { stack: { type: "string", default: "home" }, date: { type: "string" }, help: { type: "boolean" } } });
        if (values.help) {
            console.log(usage);
            return 0;
        }
        stack = values.stack as string;
        if (values.date !== undefined) {
            if (!isDate(values.date)) throw new Error(`--date must be a date as YYYY-MM-DD, not "${values.date}"`);
            // The program's one clock (config/clock.ts) reads this.
            process.env[todayVariable] = values.date;
        }
    } catch (err) {
        console.error(`${(err as Error).message}\n${usage}`);
        return 2;
    }
    if (!/^[A-Za-z0-9._-]+$/.test(stack)) {
        console.error(`"${stack}" is not a stack name: use letters, digits, ".", "_" and "-"\n${usage}`);
        return 2;
    }

    // Like the Pulumi CLI, work on the project in the current directory (npm run starts in it).
    const projectDir = process.cwd();
    const outDir = path.join(projectDir, "out", stack);
    try {
        const result = await runPlan({ projectDir, stack, outDir });
        if (!result.ok) {
            console.error(`${result.message}\nNo plan was written.`);
            return 1;
        }
        const { summary } = result;
        console.log(`Plan of stack "${stack}" as of ${summary.date} written to ${path.relative(projectDir, outDir)}/`);
        console.log(`  ${summary.resources.length} resources, ${summary.artifacts.length} files (see summary.json)`);
        for (const [name, value] of Object.entries(summary.outputs)) console.log(`  output ${name}: ${JSON.stringify(value)}`);
        if (summary.setBeforeUp.length > 0) {
            console.log("Set before pulumi up:");
            for (const p of summary.setBeforeUp) console.log(`  ${p.key}: ${p.reason}`);
        }
        return 0;
    } catch (err) {
        if (err instanceof StackFileError || (err as Error).name === "RunError") {
            console.error(`${(err as Error).message}\nNo plan was written.`);
            return 1;
        }
        throw err;
    }
}

main().then((code) => process.exit(code));
