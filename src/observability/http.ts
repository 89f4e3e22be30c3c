/** The monitoring endpoint: `/metrics` for Prometheus and `/healthz` for load balancers and Docker. */
import http from 'node:http';
import { boundAddress } from '../net/bound.js';
import { formatEndpoint, parseEndpoint } from '../net/endpoint.js';

/** What `/metrics` serves: one process's Metrics, or a group's merged view (group-metrics.ts). */
export interface MetricsSource {
  registry: { contentType: string };
  render(): Promise<string>;
}

/** What `/healthz` reports; a `status` other than `ok` answers 503. */
export type HealthReport = { status?: string } & Record<string, unknown>;

export interface MetricsServer {
  /** The address actually bound, as `host:port` (`[::1]:9325` for IPv6); useful with port 0. */
  address: string;
  close(): Promise<void>;
}

/** Starts the HTTP server for `/metrics` and `/healthz` on `listen` (`host:port`; port 0 picks one). */
export async function startMetricsServer(
  listen: string,
  metrics: MetricsSource,
  health?: () => HealthReport | Promise<HealthReport>,
): Promise<MetricsServer> {
  const { host, port } = parseEndpoint(listen, 'metrics.listen');
  const server = http.createServer((req, res) => {
    void respond(req, res, metrics, health);
  });
  server.listen(port, host);
  const bound = await boundAddress(server);
  const address = formatEndpoint({ host: bound.address, port: bound.port });
  return {
    address,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

async function respond(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  metrics: MetricsSource,
  health: (() => HealthReport | Promise<HealthReport>) | undefined,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }
  try {
    if (path === '/metrics') {
      send(res, 200, metrics.registry.contentType, await metrics.render());
    } else if (path === '/healthz') {
      const report: HealthReport = { status: 'ok', ...(health ? await health() : {}) };
      send(res, report.status === 'ok' ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`);
    } else {
      send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /healthz\n');
    }
  } catch (err) {
    // A failing health probe or collector is itself the answer: unhealthy, with the reason.
    const reason = err instanceof Error ? err.message : String(err);
    send(res, 503, 'application/json', `${JSON.stringify({ status: 'error', reason })}\n`);
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra });
  res.end(body);
}
