// The benchmark's stand-in for headscale: GET /small answers "ok"; an Upgrade to /stream?bytes=N
// gets 101 and then N bytes; an Upgrade to /hold gets 101 and then one byte every 20 s, as a
// long-poll's keepalive, until the client goes. It is also the LAN service of the relayed
// tailnet: a POST to /sink answers how many bytes it received.
//   node edgeBackend.js PORT [ADDRESS]   (default 127.0.0.1)
const http = require("node:http");
const sendBytes = require("./sendBytes");

const [port, address = "127.0.0.1"] = [Number(process.argv[2]), process.argv[3]];
const server = http.createServer((req, res) => {
    if (req.method !== "POST") return res.end("ok");
    let received = 0;
    req.on("data", (d) => (received += d.length));
    req.on("end", () => res.end(String(received)));
});
server.keepAliveTimeout = 60_000;
server.on("upgrade", (req, socket) => {
    socket.on("error", () => socket.destroy());
    socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: Upgrade\r\n\r\n");
    const url = new URL(req.url, "http://backend");
    if (url.pathname === "/stream") return sendBytes(socket, Number(url.searchParams.get("bytes")), () => socket.end());
    const beat = setInterval(() => socket.write("."), 20_000);
    socket.on("close", () => clearInterval(beat));
});
server.listen(port, address);
