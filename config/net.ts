import * as ipaddr from "ipaddr.js";

/** A parsed CIDR, kept with the text it came from so messages can quote it. */
export interface Cidr {
    readonly text: string;
    readonly address: ipaddr.IPv4 | ipaddr.IPv6;
    readonly prefixLength: number;
}

/** Parses "a.b.c.d/n" or "x::/n"; returns undefined for anything else. */
export function parseCidr(text: string): Cidr | undefined {
    const slash = text.indexOf("/");
    if (slash < 0 || !isIpAddress(text.slice(0, slash))) return undefined;
    try {
        const [address, prefixLength] = ipaddr.parseCIDR(text);
        return { text, address, prefixLength };
    } catch {
        return undefined;
    }
}

/** The network address of a CIDR in canonical form, e.g. "192.168.1.0/24" for "192.168.1.7/24". */
export function canonicalCidr(cidr: Cidr): string {
    const network =
        cidr.address.kind() === "ipv4"
            ? ipaddr.IPv4.networkAddressFromCIDR(cidr.text)
            : ipaddr.IPv6.networkAddressFromCIDR(cidr.text);
    return `${network.toString()}/${cidr.prefixLength}`;
}

/** True when the CIDR has no host bits set (tailscale refuses routes that do). */
export function isCanonical(cidr: Cidr): boolean {
    return canonicalCidr(cidr) === `${cidr.address.toString()}/${cidr.prefixLength}`;
}

/** Two prefixes overlap exactly when one contains the other's network address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
    if (a.address.kind() !== b.address.kind()) return false;
    return contains(a, b) || contains(b, a);
}

/** True when every address of `inner` lies inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
    return outer.address.kind() === inner.address.kind() && outer.prefixLength <= inner.prefixLength && contains(outer, inner);
}

function contains(outer: Cidr, inner: Cidr): boolean {
    // match() needs both sides of one family; the callers check that first.
    return (inner.address as ipaddr.IPv4).match(outer.address as ipaddr.IPv4, outer.prefixLength);
}

/** True for a literal IPv4 or IPv6 address (no prefix length). */
export function isIpAddress(text: string, family?: "ipv4" | "ipv6"): boolean {
    if (!ipaddr.isValid(text)) return false;
    // ipaddr.isValid accepts shorthand such as "10.1"; insist on the four-part form for IPv4.
    const parsed = ipaddr.parse(text);
    if (parsed.kind() === "ipv4" && !ipaddr.IPv4.isValidFourPartDecimal(text)) return false;
    return family === undefined || parsed.kind() === family;
}

/** The ipaddr.js range name of an address ("unicast", "private", "loopback", ...). */
export function addressRange(text: string): string {
    return ipaddr.parse(text).range();
}
