// A small client for the test cluster's API server: JSON over HTTPS with a client
// certificate, as the harness's own provisioner (node/addons.ts) talks to it. The API server listens inside the
// "home" namespace; this process reaches it through a Unix socket that a relay in there
// connects to it (the file system crosses namespaces). Every request is bounded.
import * as fs from "node:fs";
import * as https from "node:https";

export interface KubeApi {
    get<T = any>(path: string): Promise<T>;
    /** undefined when the object does not exist. */
    find<T = any>(path: string): Promise<T | undefined>;
    post<T = any>(path: string, body: unknown): Promise<T>;
    put<T = any>(path: string, body: unknown): Promise<T>;
    /** A merge patch (application/merge-patch+json). */
    patch<T = any>(path: string, body: unknown): Promise<T>;
    delete(path: string, body?: unknown): Promise<void>;
}

export class KubeApiError extends Error {
    constructor(readonly status: number, message: string) {
        super(message);
    }
}

export interface KubeApiOptions {
    /** https://host:port */
    readonly server: string;
    readonly caFile: string;
    readonly certFile: string;
    readonly keyFile: string;
    /** A Unix socket relayed to the API server. */
    readonly socketPath: string;
    readonly timeoutMs?: number;
}

export function kubeApi(options: KubeApiOptions): KubeApi {
    const agent = new https.Agent({
        ca: fs.readFileSync(options.caFile),
        cert: fs.readFileSync(options.certFile),
        key: fs.readFileSync(options.keyFile),
        keepAlive: true,
        maxSockets: 8,
    });
    const base = new URL(options.server);
    const timeoutMs = options.timeoutMs ?? 15_000;

    const request = (method: string, path: string, body?: unknown, contentType = "application/json"): Promise<{ status: number; text: string }> =>
        new Promise((resolve, reject) => {
            const payload = body === undefined ? undefined : JSON.stringify(body);
            const req = https.request({
                agent,
                socketPath: options.socketPath,
                // The name the server certificate is checked against.
                host: base.hostname,
                method,
                path,
                headers: {
                    Accept: "application/json",
                    ...(payload !== undefined ? { "Content-Type": contentType, "Content-Length": Buffer.byteLength(payload) } : {}),
                },
                timeout: timeoutMs,
            }, (res) => {
                let text = "";
                res.setEncoding("utf8");
                res.on("data", (d) => (text += d));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
            });
            req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
            req.on("error", reject);
            req.end(payload);
        });

    const call = async <T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> => {
        const r = await request(method, path, body, contentType);
        if (r.status < 200 || r.status >= 300) throw new KubeApiError(r.status, `${method} ${path}: ${r.status} ${r.text.slice(0, 500)}`);
        return (r.text ? JSON.parse(r.text) : undefined) as T;
    };

    return {
        get: (path) => call("GET", path),
        async find(path) {
            try {
                return await call("GET", path);
            } catch (err) {
                if (err instanceof KubeApiError && err.status === 404) return undefined;
                throw err;
            }
        },
        post: (path, body) => call("POST", path, body),
        put: (path, body) => call("PUT", path, body),
        patch: (path, body) => call("PATCH", path, body, "application/merge-patch+json"),
        async delete(path, body) {
            try {
                await call("DELETE", path, body);
            } catch (err) {
                if (!(err instanceof KubeApiError && err.status === 404)) throw err;
            }
        },
    };
}
