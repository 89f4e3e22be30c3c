import http from 'node:http';
import { boundAddress } from '../net/bound.js';
import type { Metrics } from '../observability/metrics.js';
import { QueueCommandError } from './admin-api.js';
import type { QueueManager } from './queue-manager.js';

/** The running admin interface. */
export interface AdminServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** A request the admin interface cannot make sense of. */
class BadRequest extends Error {}

/**
 * The engine's admin interface: JSON over HTTP, meant for loopback only (`transport.admin.listen`),
 * used by `portcullis queue`. GET /queues, GET /queues/<name>/messages, GET /messages/<id>,
 * POST /freeze, /unfreeze, /retry `{target}`, POST /delete `{id, ndr}`; also GET /metrics and /healthz.
 */
export async function startAdminServer(
  host: string,
  port: number,
  manager: QueueManager,
  metrics: Metrics,
  onError: (err: Error, context: string) => void,
): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    handle(req, manager, metrics).then(
      ({ status, body, type }) => send(res, status, body, type),
      (err: unknown) => {
        const status = err instanceof QueueCommandError ? err.status : err instanceof BadRequest ? 400 : 500;
        // A 4xx is the caller's mistake and theirs to read; a 500 is ours and goes to the log too.
        if (status === 500) onError(err as Error, `admin ${req.method ?? ''} ${req.url ?? ''}`);
        send(res, status, { error: (err as Error).message });
      },
    );
  });
  server.listen(port, host);
  const bound = await boundAddress(server);
  return {
    address: { host: bound.address, port: bound.port },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

interface Answer {
  status: number;
  body: unknown;
  type?: string;
}

async function handle(req: http.IncomingMessage, manager: QueueManager, metrics: Metrics): Promise<Answer> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (req.method === 'GET') {
    if (parts.length === 1 && parts[0] === 'queues') return { status: 200, body: { queues: manager.queues() } };
    if (parts.length === 3 && parts[0] === 'queues' && parts[2] === 'messages') return { status: 200, body: { messages: manager.messages(parts[1] ?? '') } };
    if (parts.length === 2 && parts[0] === 'messages') return { status: 200, body: manager.show(parts[1] ?? '') };
    if (parts.length === 1 && parts[0] === 'metrics') return { status: 200, body: await metrics.render(), type: metrics.registry.contentType };
    if (parts.length === 1 && parts[0] === 'healthz') return { status: 200, body: { status: 'ok' } };
    return { status: 404, body: { error: `not found: ${url.pathname}` } };
  }
  if (req.method === 'POST' && parts.length === 1) {
    const body = await readJson(req);
    const target = typeof body.target === 'string' ? body.target : undefined;
    switch (parts[0]) {
      case 'freeze':
      case 'unfreeze':
        if (!target) throw new BadRequest('expected {"target": queue or message id}');
        return { status: 200, body: await manager.setFrozen(target, parts[0] === 'freeze') };
      case 'retry':
        if (!target) throw new BadRequest('expected {"target": queue or message id}');
        return { status: 200, body: await manager.retryNow(target) };
      case 'delete':
        if (typeof body.id !== 'string') throw new BadRequest('expected {"id": message id, "ndr": boolean}');
        return { status: 200, body: await manager.delete(body.id, body.ndr === true) };
    }
  }
  return { status: 404, body: { error: `not found: ${req.method ?? ''} ${url.pathname}` } };
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) {
    text += (chunk as Buffer).toString('utf8');
    if (text.length > 65536) throw new BadRequest('request body too large');
  }
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object') throw new BadRequest('expected a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    if (err instanceof BadRequest) throw err;
    throw new BadRequest(`invalid JSON: ${(err as Error).message}`);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
