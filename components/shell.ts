/** Single-quotes a word for a POSIX shell; any content, newlines included, comes through unchanged. */
export function shellQuote(word: string): string {
    return /^[A-Za-z0-9_./:@=+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line from words, each quoted as needed. */
export function commandLine(words: readonly string[]): string {
    return words.map(shellQuote).join(" ");
}

/** The command line that runs a bash script sent on stdin, with these arguments. */
export function stdinScriptCommand(args: readonly string[]): string {
    return `bash -s -- ${commandLine(args)}`;
}
