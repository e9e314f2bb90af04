// Run inside the test's network namespace as the stand-in for headscale behind the tunnel:
// plain requests get their headers back as JSON; an Upgrade gets 101, a greeting, and an echo.
const http = require("node:http");
const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
});
server.on("upgrade", (req, socket) => {
    socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: Upgrade\r\n\r\n");
    socket.write("hello-from-backend\n");
    let buffer = "";
    socket.on("data", (d) => {
        buffer += d;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
            socket.write(`echo:${buffer.slice(0, nl)}\n`);
            buffer = buffer.slice(nl + 1);
        }
    });
});
server.listen(port, "127.0.0.1");
