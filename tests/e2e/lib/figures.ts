// What the run measures, printed as it goes and again at the end, each figure beside the same
// measure from the last run on the process node agent (the harness before the real Node), so
// that a reader sees what the real containers changed.
import { processAgentFigures } from "./processAgentFigures";

export class Figures {
    private readonly lines: string[] = [];

    /** A measure in seconds (or a figure of its own, such as a ratio), with its earlier counterpart. */
    report(measure: string, value: number | string, detail = ""): void {
        const text = typeof value === "number" ? seconds(value) : value;
        const before = processAgentFigures[measure];
        this.add(`${measure}: ${text}${detail ? `; ${detail}` : ""}${before ? `   [process node agent: ${before}]` : ""}`);
    }

    /** A line without a counterpart: what changed in an update, a listing. */
    line(text: string): void {
        this.add(`  ${text}`);
    }

    print(): void {
        console.log(`\nmeasured:\n  ${this.lines.join("\n  ")}`);
    }

    private add(line: string): void {
        console.log(line);
        this.lines.push(line);
    }
}

/** "12.3 s" */
export function seconds(value: number): string {
    return `${value.toFixed(1)} s`;
}
