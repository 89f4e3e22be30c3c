import http from 'node:http';
import { endpointOf } from '../net/endpoint.js';

/** An answer of the admin interface that is not a success, with the engine's reason. */
export class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

/** Calls the engine's admin interface at `host:port` (IPv6 in brackets); resolves to the parsed JSON answer. */
export function adminRequest(admin: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 60_000): Promise<unknown> {
  const endpoint = endpointOf(admin);
  if (!endpoint) return Promise.reject(new Error(`admin address (--admin or transport.admin.listen): expected host:port, got '${admin}'`));
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: endpoint.host,
        port: endpoint.port,
        method,
        path,
        timeout: timeoutMs,
        headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return reject(new AdminError(res.statusCode ?? 0, `unexpected answer from the engine: ${text.slice(0, 200)}`));
          }
          if ((res.statusCode ?? 0) >= 400) {
            const reason = (parsed as { error?: string }).error ?? text;
            return reject(new AdminError(res.statusCode ?? 0, reason));
          }
          resolve(parsed);
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from the engine's admin interface at ${admin} within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ECONNREFUSED' ? new Error(`the transport engine is not running (nothing on ${admin}): ${err.message}`) : err);
    });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
