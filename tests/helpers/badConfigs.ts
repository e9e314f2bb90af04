// Bad stack configurations and what the validator must say about each: the key it names
// and a phrase of the message that tells the user what is allowed.
import { testSshKey, Variant } from "./stack";

export interface BadConfig {
    readonly title: string;
    readonly variant: Variant;
    /** The exact key (with path) that a problem must name. */
    readonly key: string;
    readonly says: string;
}

const ed25519HostKey = "AAAAC3NzaC1lZDI1NTE5AAAAIGf6nxOFGitlZ5GdkZE3EqOVMa2gFlnikrhRaOG3osF2";

export const badConfigs: BadConfig[] = [
    { title: "hostname missing", variant: { unset: ["hostname"] }, key: "overlay:hostname", says: "is required" },
    { title: "hostname with a space", variant: { set: { hostname: "head scale.example.com" } }, key: "overlay:hostname", says: "must be a DNS name" },
    { title: "hostname of one label", variant: { set: { hostname: "headscale" } }, key: "overlay:hostname", says: "at least one dot" },
    { title: "hostname that is an IP", variant: { set: { hostname: "203.0.113.10" } }, key: "overlay:hostname", says: "not an IP address" },
    { title: "hostname in upper case", variant: { set: { hostname: "Headscale.example.com" } }, key: "overlay:hostname", says: "lower case" },
    { title: "IPv4 out of range", variant: { set: { vpsIpv4: "203.0.113.300" } }, key: "overlay:vpsIpv4", says: "IPv4 address" },
    { title: "IPv6 given as the IPv4 address", variant: { set: { vpsIpv4: "2001:db8::1" } }, key: "overlay:vpsIpv4", says: "IPv4 address" },
    { title: "IPv4 given as the IPv6 address", variant: { set: { vpsIpv6: "203.0.113.1" } }, key: "overlay:vpsIpv6", says: "IPv6 address" },
    { title: "multicast VPS address", variant: { set: { vpsIpv4: "224.0.0.1" } }, key: "overlay:vpsIpv4", says: "unicast" },
    { title: "SSH port 0", variant: { set: { vpsSshPort: 0 } }, key: "overlay:vpsSshPort", says: "whole number from 1 to 65535" },
    { title: "SSH port above 65535", variant: { set: { vpsSshPort: 70000 } }, key: "overlay:vpsSshPort", says: "whole number from 1 to 65535" },
    { title: "SSH port as a word", variant: { set: { vpsSshPort: "ssh" } }, key: "overlay:vpsSshPort", says: "whole number" },
    { title: "tunnel port taken by nginx", variant: { set: { tunnelPort: 443 } }, key: "overlay:tunnelPort", says: "nginx" },
    { title: "tunnel port equal to the SSH port", variant: { set: { tunnelPort: 2222, vpsSshPort: 2222 } }, key: "overlay:tunnelPort", says: "sshd" },
    { title: "SSH user with a capital", variant: { set: { vpsSshUser: "Admin" } }, key: "overlay:vpsSshUser", says: "Unix user name" },
    { title: "host key that is not a key", variant: { set: { vpsHostKey: "not-a-key" } }, key: "overlay:vpsHostKey", says: "SSH host public key" },
    { title: "host key whose blob is another type", variant: { set: { vpsHostKey: `ssh-rsa ${ed25519HostKey}` } }, key: "overlay:vpsHostKey", says: "SSH host public key" },
    { title: "SSH private key missing", variant: { unset: ["vpsSshPrivateKey"] }, key: "overlay:vpsSshPrivateKey", says: "pulumi config set --secret vpsSshPrivateKey" },
    { title: "SSH private key stored in plain text", variant: { set: { vpsSshPrivateKey: testSshKey } }, key: "overlay:vpsSshPrivateKey", says: "stored in plain text" },
    { title: "SSH private key that is not a key", variant: { set: { vpsSshPrivateKey: "hunter2-not-a-key" }, secret: ["vpsSshPrivateKey"] }, key: "overlay:vpsSshPrivateKey", says: "PRIVATE KEY" },
    { title: "LAN routes missing", variant: { unset: ["lanRoutes"] }, key: "overlay:lanRoutes", says: "is required" },
    { title: "LAN routes empty", variant: { set: { lanRoutes: [] } }, key: "overlay:lanRoutes", says: "at least one LAN subnet" },
    { title: "LAN routes as a bare string", variant: { set: { lanRoutes: "192.168.1.0/24" } }, key: "overlay:lanRoutes", says: "list of LAN subnets" },
    { title: "LAN route with host bits", variant: { set: { lanRoutes: ["192.168.1.7/24"] } }, key: "overlay:lanRoutes[0]", says: "host bits" },
    { title: "LAN route without a prefix length", variant: { set: { lanRoutes: ["192.168.1.0"] } }, key: "overlay:lanRoutes[0]", says: "CIDR" },
    { title: "LAN route inside the pod CIDR", variant: { set: { lanRoutes: ["192.168.1.0/24", "10.42.3.0/24"] } }, key: "overlay:lanRoutes[1]", says: "cluster pod CIDR 10.42.0.0/16" },
    { title: "LAN route covering the service CIDR", variant: { set: { lanRoutes: ["10.0.0.0/8"] } }, key: "overlay:lanRoutes[0]", says: "cluster service CIDR 10.43.0.0/16" },
    { title: "LAN route inside the tailnet", variant: { set: { lanRoutes: ["100.64.10.0/24"] } }, key: "overlay:lanRoutes[0]", says: "tailnet prefix 100.64.0.0/10" },
    { title: "IPv6 LAN route inside the tailnet", variant: { set: { lanRoutes: ["fd7a:115c:a1e0:ab::/64"] } }, key: "overlay:lanRoutes[0]", says: "tailnet prefix fd7a:115c:a1e0::/48" },
    { title: "default route", variant: { set: { lanRoutes: ["0.0.0.0/0"] } }, key: "overlay:lanRoutes[0]", says: "exit node" },
    { title: "LAN routes overlapping each other", variant: { set: { lanRoutes: ["192.168.0.0/16", "192.168.1.0/24"] } }, key: "overlay:lanRoutes[1]", says: "list each subnet once" },
    { title: "pod CIDR without prefix length", variant: { set: { podCidrs: ["10.42.0.0"] } }, key: "overlay:podCidrs[0]", says: "CIDR" },
    { title: "tailnet prefix outside 100.64.0.0/10", variant: { set: { tailnetIpv4Prefix: "10.200.0.0/16" } }, key: "overlay:tailnetIpv4Prefix", says: "100.64.0.0/10 or a part of it" },
    { title: "tailnet prefix overlapping the pods", variant: { set: { podCidrs: ["100.64.0.0/16"] } }, key: "overlay:tailnetIpv4Prefix", says: "overlay:podCidrs[0]" },
    { title: "no subnet router", variant: { set: { routerReplicas: 0 } }, key: "overlay:routerReplicas", says: "whole number from 1 to 5" },
    { title: "six subnet routers", variant: { set: { routerReplicas: 6 } }, key: "overlay:routerReplicas", says: "whole number from 1 to 5" },
    { title: "a router name too long for the last router's suffix", variant: { set: { routerReplicas: 2, routerHostname: "r".repeat(62) } }, key: "overlay:routerHostname", says: "must fit in 63 characters" },
    { title: "HA probe every second", variant: { set: { routerProbeIntervalSeconds: 1 } }, key: "overlay:routerProbeIntervalSeconds", says: "whole number from 2 to 60" },
    { title: "HA probe timeout of 0", variant: { set: { routerProbeTimeoutSeconds: 0 } }, key: "overlay:routerProbeTimeoutSeconds", says: "whole number from 1 to 59" },
    { title: "HA probe timeout as long as the interval", variant: { set: { routerProbeTimeoutSeconds: 10, routerProbeIntervalSeconds: 10 } }, key: "overlay:routerProbeTimeoutSeconds", says: "shorter than overlay:routerProbeIntervalSeconds" },
    { title: "rotation as long as the lifetime", variant: { set: { routerKeyRotationDays: 90, routerKeyLifetimeDays: 90 } }, key: "overlay:routerKeyRotationDays", says: "shorter than overlay:routerKeyLifetimeDays" },
    { title: "key lifetime of a day", variant: { set: { routerKeyLifetimeDays: 1 } }, key: "overlay:routerKeyLifetimeDays", says: "whole number from 2 to 3650" },
    { title: "unknown TLS mode", variant: { set: { tlsMode: "letsencrypt" } }, key: "overlay:tlsMode", says: "acme or provided" },
    { title: "ACME without an e-mail", variant: { set: { acmeEmail: "" } }, key: "overlay:acmeEmail", says: "required when overlay:tlsMode is acme" },
    { title: "ACME with a bad e-mail", variant: { set: { acmeEmail: "admin" } }, key: "overlay:acmeEmail", says: "e-mail address" },
    { title: "provided TLS without a certificate", variant: { set: { tlsMode: "provided" } }, key: "overlay:tlsCertificate", says: "required when overlay:tlsMode is provided" },
    { title: "ACME and a certificate at once", variant: { set: { tlsCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" } }, key: "overlay:tlsCertificate", says: "choose a single approach" },
    { title: "MagicDNS domain containing the hostname", variant: { set: { dnsBaseDomain: "example.com" } }, key: "overlay:dnsBaseDomain", says: "contains overlay:hostname" },
    { title: "nameserver given as a name", variant: { set: { dnsNameservers: ["dns.google"] } }, key: "overlay:dnsNameservers[0]", says: "IP address" },
    { title: "split DNS with no resolver", variant: { set: { dnsSplit: { "home.arpa": [] } } }, key: "overlay:dnsSplit.home.arpa", says: "at least one resolver" },
    { title: "split DNS inside the MagicDNS domain", variant: { set: { dnsSplit: { "nas.tailnet.internal": ["192.168.1.1"] } } }, key: "overlay:dnsSplit.nas.tailnet.internal", says: "MagicDNS" },
    { title: "two user keys with one name", variant: { set: { userKeys: [{ name: "ci", tags: ["tag:ci"] }, { name: "ci", user: "alice" }] } }, key: "overlay:userKeys[1].name", says: "already used" },
    { title: "user key with user and tags", variant: { set: { userKeys: [{ name: "x", user: "alice", tags: ["tag:ci"] }] } }, key: "overlay:userKeys[0]", says: "not both" },
    { title: "user key with an unknown field", variant: { set: { userKeys: [{ name: "x", user: "alice", expiry: "7d" }] } }, key: "overlay:userKeys[0]", says: "expiry" },
    { title: "a key's GitHub secret in a repository that is not owner/name", variant: { set: { userKeys: [{ name: "ci", tags: ["tag:ci"], githubSecret: { repository: "overlay", name: "TAILNET_CI_AUTHKEY" } }] } }, key: "overlay:userKeys[0].githubSecret.repository", says: "owner/name" },
    { title: "a key's GitHub secret named GITHUB_…", variant: { set: { userKeys: [{ name: "ci", tags: ["tag:ci"], githubSecret: { repository: "alice/overlay", name: "GITHUB_CI_KEY" } }] } }, key: "overlay:userKeys[0].githubSecret.name", says: "not starting with a digit or with GITHUB_" },
    { title: "two keys written into one GitHub secret", variant: { set: { userKeys: [{ name: "ci", tags: ["tag:ci"], githubSecret: { repository: "alice/overlay", name: "KEY" } }, { name: "ci2", tags: ["tag:ci"], githubSecret: { repository: "Alice/overlay", name: "key" } }] } }, key: "overlay:userKeys[1].githubSecret", says: "one secret holds one key" },
    { title: "tag without the tag: prefix", variant: { set: { userKeys: [{ name: "ci", tags: ["ci"] }] } }, key: "overlay:userKeys[0].tags[0]", says: 'tag such as "tag:ci"' },
    { title: "image on latest", variant: { set: { headscaleImage: "ghcr.io/juanfont/headscale:latest" } }, key: "overlay:headscaleImage", says: "pinned" },
    { title: "namespace in capitals", variant: { set: { namespace: "Overlay" } }, key: "overlay:namespace", says: "lower-case" },
    { title: "storage size in GB", variant: { set: { storageSize: "1GB" } }, key: "overlay:storageSize", says: "512Mi" },
    { title: "MagicDNS switch as a word", variant: { set: { magicDns: "yes" } }, key: "overlay:magicDns", says: "true or false" },
    { title: "unknown log level", variant: { set: { logLevel: "verbose" } }, key: "overlay:logLevel", says: "trace, debug, info, warn, error" },
    { title: "backup identity that is an SSH key", variant: { set: { backupIdentity: testSshKey }, secret: ["backupIdentity"] }, key: "overlay:backupIdentity", says: "AGE-SECRET-KEY-1" },
    { title: "backup identity with a wrong checksum", variant: { set: { backupIdentity: "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ" }, secret: ["backupIdentity"] }, key: "overlay:backupIdentity", says: "age identity" },
    { title: "misspelt key", variant: { set: { hostnmae: "headscale.example.com" } }, key: "overlay:hostnmae", says: "did you mean overlay:hostname" },
];
