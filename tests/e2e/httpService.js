// A small HTTP service standing for something on the home LAN (or in the cluster): answers
// every request with its name. Usage: node httpService.js ADDRESS PORT NAME
const http = require("node:http");
const [address, port, name] = process.argv.slice(2);
http.createServer((req, res) => res.end(`${name}\n`)).listen(Number(port), address);
