// The end-to-end suite's small internet, all in network namespaces of its own:
//
//   device (172.16.2.2) ──┐                     ┌── home (172.16.1.2): the control plane, the
//                         ├── wan ── VPS (VM) ──┤     first Node (its pods: 10.42.0.0/24), and
//                         │  (no forwarding)    │     "pulumi up"
//                         │                     ├── lan (192.168.1.10, behind home): a service
//                         │                     └── home2 (172.16.3.2, behind home): a second
//                         │                           Node (its pods: 10.42.1.0/24)
//
// "wan" holds QEMU, whose port forwards listen on its 127.0.0.1 only; the VPS's address is
// DNAT-ed there (and the source made 127.0.0.1: the guest sees every client as 10.0.2.2). wan forwards nothing between home and device: like two NATed networks, they
// can meet only through the VPS (DERP), never directly.
import * as fs from "node:fs";
import * as path from "node:path";
import { createNetns, ip, link, mustRun, Netns } from "../helpers/netns";

/** The address QEMU's user network gives its guest: the "VPS's public IP" everywhere here. */
export const vpsAddress = "10.0.2.15";
export const lanServiceAddress = "192.168.1.10";
/** home's address on its link to wan: the cluster's API server and its Node. */
export const homeAddress = "172.16.1.2";
/** The second Node's address, on its link to home (home routes for it, as a home LAN would). */
export const home2Address = "172.16.3.2";
/** The cluster's ranges, k3s's defaults (as the example stack's podCidrs and serviceCidrs say), and each Node's share. */
export const clusterCidr = "10.42.0.0/16";
export const serviceCidr = "10.43.0.0/16";
export const clusterDns = "10.43.0.10";
export const homePodCidr = "10.42.0.0/24";
export const home2PodCidr = "10.42.1.0/24";

export interface Forward {
    readonly protocol: "tcp" | "udp";
    /** Port on the VPS. */
    readonly guestPort: number;
    /** Port on wan's 127.0.0.1 where QEMU listens. */
    readonly hostPort: number;
}

export interface World {
    readonly wan: Netns;
    readonly home: Netns;
    readonly lan: Netns;
    readonly home2: Netns;
    readonly device: Netns;
    destroy(): void;
}

/** /etc/hosts and an empty resolv.conf for the namespace (no DNS server exists here). */
function names(ns: Netns, hosts: Record<string, string>): void {
    const lines = ["127.0.0.1 localhost", "::1 localhost", ...Object.entries(hosts).map(([name, addr]) => `${addr} ${name}`)];
    fs.writeFileSync(path.join(ns.etc, "hosts"), `${lines.join("\n")}\n`);
    fs.writeFileSync(path.join(ns.etc, "resolv.conf"), "# no DNS server in the test namespaces\n");
}

export function createWorld(hostname: string, forwards: readonly Forward[]): World {
    const made: Netns[] = [];
    const make = (prefix: string) => {
        const ns = createNetns(prefix);
        made.push(ns);
        return ns;
    };
    try {
        const wan = make("ovl-wan");
        const home = make("ovl-home");
        const lan = make("ovl-lan");
        const device = make("ovl-dev");
        const home2 = make("ovl-home2");
        link(wan, "home0", "172.16.1.1/24", home, "wan0", `${homeAddress}/24`);
        link(wan, "dev0", "172.16.2.1/24", device, "wan0", "172.16.2.2/24");
        link(home, "lan0", "192.168.1.1/24", lan, "eth0", `${lanServiceAddress}/24`);
        ip(home, "route", "add", "default", "via", "172.16.1.1");
        ip(device, "route", "add", "default", "via", "172.16.2.1");
        ip(lan, "route", "add", "default", "via", "192.168.1.1");
        link(home, "home2", "172.16.3.1/24", home2, "home0", `${home2Address}/24`);
        ip(home2, "route", "add", "default", "via", "172.16.3.1");
        mustRun(home, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
        // Replies from QEMU to the second node go back through home.
        ip(wan, "route", "add", "172.16.3.0/24", "via", homeAddress);
        // Pods reach pods on the other Node, as a cluster's network routes them (home2's
        // default route already leads to home's).
        ip(home, "route", "add", home2PodCidr, "via", home2Address);

        // The VPS's address, DNAT-ed to QEMU's forwards on wan's loopback.
        mustRun(wan, "sysctl", ["-qw", "net.ipv4.conf.all.route_localnet=1"]);
        mustRun(wan, "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);
        const rules = forwards.map((f) => `        ip daddr ${vpsAddress} ${f.protocol} dport ${f.guestPort} dnat to 127.0.0.1:${f.hostPort}`);
        mustRun(wan, "nft", ["-f", "-"], [
            "table ip e2e_wan {",
            "    chain prerouting {",
            "        type nat hook prerouting priority dstnat; policy accept;",
            ...rules,
            "    }",
            // The guest's replies go to QEMU's peer: make that 127.0.0.1, as if all were local.
            "    chain input {",
            "        type nat hook input priority 100; policy accept;",
            "        ip daddr 127.0.0.1 ip saddr != 127.0.0.0/8 snat to 127.0.0.1",
            "    }",
            "}",
            // Nothing starts from wan to anywhere but its loopback: the VM's own connections
            // (QEMU opens them from here) reach only the mirror relay on 127.0.0.1:80.
            "table inet e2e_wan_out {",
            "    chain output {",
            "        type filter hook output priority filter; policy drop;",
            "        oif lo accept",
            "        ct state established,related accept",
            "    }",
            "}",
            "",
        ].join("\n"));

        for (const ns of [home, home2, device]) names(ns, { [hostname]: vpsAddress });
        return {
            wan, home, lan, home2, device,
            destroy() {
                for (const ns of made.reverse()) ns.destroy();
            },
        };
    } catch (err) {
        for (const ns of made.reverse()) ns.destroy();
        throw err;
    }
}
