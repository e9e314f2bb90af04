// Run inside the test's network namespace: opens TLS to nginx, asks for an HTTP Upgrade, and
// checks that bytes then flow both ways. Prints one JSON line. Bounded by a 10 s timer.
const tls = require("node:tls");
const [host, port, servername, caFile] = process.argv.slice(2);
const result = { status: "", fromBackend: "", echoed: "" };
const done = (error) => {
    console.log(JSON.stringify({ ...result, error: error ? String(error) : undefined }));
    process.exit(0);
};
setTimeout(() => done("timed out"), 10_000).unref();
const socket = tls.connect({ host, port: Number(port), servername, ca: require("node:fs").readFileSync(caFile) }, () => {
    socket.write(`GET /ts2021 HTTP/1.1\r\nHost: ${servername}\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n\r\n`);
});
let buffer = "";
socket.on("data", (chunk) => {
    buffer += chunk.toString("latin1");
    if (!result.status) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        result.status = buffer.slice(0, buffer.indexOf("\r\n"));
        buffer = buffer.slice(end + 4);
        if (!result.status.includes(" 101 ")) return done();
    }
    if (!result.fromBackend && buffer.includes("hello-from-backend\n")) {
        result.fromBackend = "hello-from-backend";
        buffer = buffer.slice(buffer.indexOf("hello-from-backend\n") + 19);
        socket.write("ping-from-client\n");
    }
    if (result.fromBackend && buffer.includes("echo:ping-from-client\n")) {
        result.echoed = "echo:ping-from-client";
        done();
    }
});
socket.on("error", done);
