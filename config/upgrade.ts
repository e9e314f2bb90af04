// Which headscale versions may follow which: headscale migrates its database one minor
// version at a time and never back. Pure: no Pulumi.

export interface Version {
    readonly major: number;
    readonly minor: number;
    readonly patch: number;
}

/** The version an image's tag names ("...:0.29.2", "...:v0.29.2@sha256:..."), if it names one. */
export function imageVersion(image: string): Version | undefined {
    const m = /:(v?\d+\.\d+\.\d+)(?:@sha256:[a-f0-9]{64})?$/.exec(image);
    return m ? parseVersion(m[1]) : undefined;
}

/** "0.29.2" or "v0.29.2", as formatVersion writes it; undefined for anything else. */
export function parseVersion(text: string): Version | undefined {
    const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(text);
    return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

export function formatVersion(v: Version): string {
    return `${v.major}.${v.minor}.${v.patch}`;
}

/**
 * Why `next` may not replace the running `previous`, or undefined when it may: the same
 * minor version at the same or a later patch, or the next minor version.
 */
export function upgradeProblem(previous: Version, next: Version): string | undefined {
    const order = (a: Version, b: Version) => a.major - b.major || a.minor - b.minor || a.patch - b.patch;
    const sameMinor = next.major === previous.major && next.minor === previous.minor;
    const nextMinor = next.major === previous.major && next.minor === previous.minor + 1;
    if ((sameMinor && order(next, previous) >= 0) || nextMinor) return undefined;
    const allowed = `${formatVersion(previous)} or a later ${previous.major}.${previous.minor}.x patch, or ${previous.major}.${previous.minor + 1}.x`;
    const what = order(next, previous) < 0
        ? `${formatVersion(next)} is older than the running ${formatVersion(previous)}, and headscale cannot go back to an older database schema`
        : `${formatVersion(next)} skips a minor version after the running ${formatVersion(previous)}, and headscale migrates its database one minor version at a time`;
    return `headscaleImage: ${what}. Allowed next: ${allowed}.`;
}
