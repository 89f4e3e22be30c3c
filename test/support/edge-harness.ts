/** Runs the whole edge in-process against a recording back end, with rules written as plain objects. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RulesSchema, type Rules } from '../../src/config/schema.js';
import { startEdge, type Edge, type EdgeOptions } from '../../src/edge/edge.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { startBackend, type TestBackend } from './backend-server.js';
import { RawSmtpClient } from './smtp-client.js';

/** A running edge, its back end, and where its Badmail goes. */
export interface Harness {
  edge: Edge;
  backend: TestBackend;
  badmail: string;
  metrics: Metrics;
  /** Rules as last loaded (change `input` and call edge.reload()). */
  input: Record<string, unknown>;
  port(listener?: string): number;
  connect(listener?: string): Promise<RawSmtpClient>;
  /** Badmail entries: each with its message bytes and envelope. */
  badmailEntries(): { message: string; envelope: Record<string, unknown> }[];
  close(): Promise<void>;
}

/** Rule-set input with test defaults: domain example.com, one listener `main` on 127.0.0.1:0. */
export function baseRules(backendPort: number, badmail: string): Record<string, unknown> {
  return {
    hostname: 'edge.test',
    acceptedDomains: ['example.com'],
    listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
    dns: { servers: ['127.0.0.1:9'], timeoutMs: 300, healthCheckIntervalSec: 0 },
    backend: { url: `smtp://127.0.0.1:${backendPort}`, timeoutMs: 2000 },
    badmail,
    log: { level: 'silent' },
    shutdownGraceMs: 1000,
  };
}

/** Starts a back end and an edge whose rules are `baseRules` changed by `customise`; `options` injects a clock, store, probe or logger. */
export async function startHarness(
  customise: (input: Record<string, unknown>) => void = () => undefined,
  options: Pick<EdgeOptions, 'clock' | 'state' | 'probe' | 'logger'> = {},
): Promise<Harness> {
  const backend = await startBackend();
  const badmail = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-badmail-'));
  const input = baseRules(backend.port, badmail);
  customise(input);
  const metrics = new Metrics();
  const edge = await startEdge(
    { load: async (): Promise<Rules> => RulesSchema.parse(structuredClone(input)) },
    { metrics, logger: createLogger({ level: 'silent' }), ...options },
  );
  const port = (name = 'main'): number => {
    const a = edge.addresses[name];
    if (!a) throw new Error(`no listener ${name}`);
    return a.port;
  };
  return {
    edge,
    backend,
    badmail,
    metrics,
    input,
    port,
    async connect(name = 'main') {
      const c = await RawSmtpClient.connect(port(name));
      return c;
    },
    badmailEntries() {
      return fs
        .readdirSync(badmail)
        .filter((d) => !d.startsWith('.'))
        .sort()
        .map((d) => ({
          message: fs.readFileSync(path.join(badmail, d, 'message.eml'), 'latin1'),
          envelope: JSON.parse(fs.readFileSync(path.join(badmail, d, 'envelope.json'), 'utf8')) as Record<string, unknown>,
        }));
    },
    async close() {
      await edge.close(200);
      await backend.close();
      fs.rmSync(badmail, { recursive: true, force: true });
    },
  };
}
