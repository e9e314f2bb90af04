// The "provided" TLS mode's inputs: a certificate for the login server's name, signed by the
// test CA that the tailscale image and the device trust (node/buildImages.ts makes it).
import * as fs from "node:fs";
import * as path from "node:path";
import { mustExec } from "../exec";

export interface TlsFiles {
    /** The CA's certificate file, for SSL_CERT_FILE and curl --cacert. */
    readonly ca: string;
    readonly certificate: string;
    readonly privateKey: string;
}

export async function makeCertificate(dir: string, ca: { certificate: string; key: string }, hostname: string): Promise<TlsFiles> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const openssl = (...args: string[]) => mustExec(undefined, "openssl", args, { timeoutMs: 30_000 });
    const f = (name: string) => path.join(dir, name);
    await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", `/CN=${hostname}`);
    fs.writeFileSync(f("ext"), `subjectAltName=DNS:${hostname}\nextendedKeyUsage=serverAuth\n`);
    await openssl("x509", "-req", "-in", f("server.csr"), "-CA", ca.certificate, "-CAkey", ca.key, "-CAcreateserial", "-CAserial", f("ca.srl"),
        "-days", "2", "-extfile", f("ext"), "-out", f("server.pem"));
    return { ca: ca.certificate, certificate: fs.readFileSync(f("server.pem"), "utf8"), privateKey: fs.readFileSync(f("server.key"), "utf8") };
}
