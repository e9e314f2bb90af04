// The one place the program reads the date. `pulumi up` uses today (UTC); the offline plan
// and the tests set OVERLAY_TODAY (npm run plan -- --date YYYY-MM-DD) to evaluate as of a day.

const dayMs = 24 * 60 * 60 * 1000;
export const todayVariable = "OVERLAY_TODAY";

/** Today as YYYY-MM-DD in UTC, or the injected date. */
export function today(): string {
    const injected = process.env[todayVariable];
    if (injected === undefined || injected === "") return new Date().toISOString().slice(0, 10);
    if (!isDate(injected)) throw new Error(`${todayVariable} must be a date as YYYY-MM-DD, not "${injected}"`);
    return injected;
}

export function isDate(text: string): boolean {
    const time = Date.parse(`${text}T00:00:00Z`);
    return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(time) && new Date(time).toISOString().slice(0, 10) === text;
}

export function addDays(date: string, days: number): string {
    return new Date(Date.parse(`${date}T00:00:00Z`) + days * dayMs).toISOString().slice(0, 10);
}

export interface RotationWindow {
    /** First day of the window that `date` falls in. */
    readonly start: string;
    /** First day of the next window: the next rotation. */
    readonly next: string;
}

/**
 * The rotation window of a date: windows are `periodDays` long and counted from 1970-01-01, so
 * every run on days of one window computes the same window, with no state to keep.
 */
export function rotationWindow(date: string, periodDays: number): RotationWindow {
    const day = Math.floor(Date.parse(`${date}T00:00:00Z`) / dayMs);
    const startDay = day - (day % periodDays);
    const start = new Date(startDay * dayMs).toISOString().slice(0, 10);
    return { start, next: addDays(start, periodDays) };
}
