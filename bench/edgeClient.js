// The benchmark's client; prints one JSON line.
//   node edgeClient.js stream  URL BYTES          one upgraded stream: seconds and bytes
//   node edgeClient.js latency URL COUNT          COUNT small requests, one after another, on one kept-alive connection: p50, p99
//   node edgeClient.js hold    URL COUNT SECONDS  COUNT upgraded connections held SECONDS: how many were up, how many failed
//   node edgeClient.js upload  URL BYTES          one POST of BYTES to edgeBackend.js's /sink: seconds, and the bytes it counted
// URL is http://… or https://… (TLS trusts CA_FILE from the environment; the name is the URL's,
// the address CONNECT_TO). Bounded: every mode stops itself.
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const net = require("node:net");
const tls = require("node:tls");
const sendBytes = require("./sendBytes");

const [mode, target, a, b] = process.argv.slice(2);
const url = new URL(target);
const secure = url.protocol === "https:";
const address = process.env.CONNECT_TO || url.hostname;
const port = Number(url.port || (secure ? 443 : 80));
const ca = secure ? fs.readFileSync(process.env.CA_FILE) : undefined;
const done = (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
};
setTimeout(() => done({ error: "timed out" }), 300_000).unref();

/** A connection that asks for an Upgrade to `path`; calls back with the socket after the 101, and what came with it. */
function upgrade(path, onUpgraded, onError) {
    const socket = secure
        ? tls.connect({ host: address, port, servername: url.hostname, ca })
        : net.connect({ host: address, port });
    socket.once(secure ? "secureConnect" : "connect", () => {
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.hostname}\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n\r\n`);
    });
    let head = Buffer.alloc(0);
    const onData = (data) => {
        head = Buffer.concat([head, data]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        if (!head.subarray(0, end).toString("latin1").startsWith("HTTP/1.1 101")) return onError(new Error(head.subarray(0, end).toString("latin1").split("\r\n")[0]));
        onUpgraded(socket, head.subarray(end + 4));
    };
    socket.on("data", onData);
    socket.on("error", onError);
    return socket;
}

if (mode === "stream") {
    const bytes = Number(a);
    const started = process.hrtime.bigint();
    upgrade(`/stream?bytes=${bytes}`, (socket, first) => {
        let received = first.length;
        socket.on("data", (d) => (received += d.length));
        socket.on("end", () => done({ bytes: received, seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
    }, (err) => done({ error: String(err) }));
} else if (mode === "latency") {
    const count = Number(a);
    const agent = new (secure ? https : http).Agent({ keepAlive: true, maxSockets: 1 });
    const times = [];
    const one = () => {
        const started = process.hrtime.bigint();
        const req = (secure ? https : http).request({ host: address, port, path: "/small", servername: url.hostname, ca, agent, headers: { host: url.hostname } }, (res) => {
            res.resume();
            res.on("end", () => {
                times.push(Number(process.hrtime.bigint() - started) / 1e6);
                if (times.length < count) return one();
                times.sort((x, y) => x - y);
                done({ count, p50: times[Math.floor(count * 0.5)], p99: times[Math.floor(count * 0.99)] });
            });
        });
        req.on("error", (err) => done({ error: String(err) }));
        req.end();
    };
    one();
} else if (mode === "hold") {
    const count = Number(a);
    const seconds = Number(b);
    let up = 0;
    let failed = 0;
    let finished = false;
    const errors = new Set();
    const fail = (err) => {
        failed++;
        if (errors.size < 5) errors.add(String(err.message || err));
    };
    // Open them at 500 a second, as clients reconnecting after a restart would.
    let opened = 0;
    const open = setInterval(() => {
        for (let i = 0; i < 50 && opened < count; i++, opened++) {
            let upgraded = false;
            const socket = upgrade("/hold", () => {
                upgraded = true;
                up++;
            }, fail);
            socket.on("close", () => {
                if (upgraded && !finished) fail(new Error("closed while held"));
            });
        }
        if (opened >= count) clearInterval(open);
    }, 100);
    setTimeout(() => {
        finished = true;
        done({ count, up, failed, errors: [...errors] });
    }, (count / 500 + seconds) * 1000);
} else if (mode === "upload") {
    const bytes = Number(a);
    const started = process.hrtime.bigint();
    const req = (secure ? https : http).request({ host: address, port, path: url.pathname, method: "POST", servername: url.hostname, ca, headers: { host: url.hostname, "content-length": bytes } }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => done({ bytes: Number(body), seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
    });
    req.on("error", (err) => done({ error: String(err) }));
    sendBytes(req, bytes, () => req.end());
} else {
    done({ error: `unknown mode ${mode}` });
}
