// Which ports of a host answer, as a stranger on the internet would see it. A TCP port
// answers if any byte comes back within the wait after a short HTTP request (an SSH banner,
// an HTTP redirect or error, a test listener's greeting); a UDP port answers if any datagram comes
// back to a STUN binding request. Prints {"tcp/22": true, ...}. Bounded: one wait per port.
// Usage: node probe.js ADDRESS HOSTNAME WAIT_MS tcp/22 udp/3478 ...
const net = require("node:net");
const dgram = require("node:dgram");
const crypto = require("node:crypto");
const [host, hostname, wait, ...ports] = process.argv.slice(2);
const waitMs = Number(wait);

function tcp(port) {
    return new Promise((resolve) => {
        const socket = net.connect({ host, port });
        const finish = (answered) => { socket.destroy(); resolve(answered); };
        const timer = setTimeout(() => finish(false), waitMs);
        socket.on("connect", () => socket.write(`HEAD / HTTP/1.0\r\nHost: ${hostname}\r\n\r\n`));
        socket.on("data", () => { clearTimeout(timer); finish(true); });
        socket.on("error", () => { clearTimeout(timer); finish(false); });
        socket.on("close", () => { clearTimeout(timer); finish(false); });
    });
}

function udp(port) {
    return new Promise((resolve) => {
        const socket = dgram.createSocket("udp4");
        const finish = (answered) => { try { socket.close(); } catch {} resolve(answered); };
        const timer = setTimeout(() => finish(false), waitMs);
        socket.on("message", () => { clearTimeout(timer); finish(true); });
        socket.on("error", () => { clearTimeout(timer); finish(false); });
        // STUN binding request: type 0x0001, length 0, magic cookie, 96-bit transaction id.
        const request = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), crypto.randomBytes(12)]);
        socket.send(request, Number(port), host);
    });
}

(async () => {
    const results = await Promise.all(ports.map((p) => {
        const [protocol, port] = p.split("/");
        return (protocol === "udp" ? udp : tcp)(Number(port)).then((answered) => [p, answered]);
    }));
    console.log(JSON.stringify(Object.fromEntries(results)));
})();
