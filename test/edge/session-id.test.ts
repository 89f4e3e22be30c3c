/**
 * The session ID ties what a sender quotes to the logs: it ends every refusal the edge writes itself,
 * and the session's log lines carry it, including a connection error in the middle of a transaction.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { RulesSchema, type Rules } from '../../src/config/schema.js';
import { startEdge, type Edge } from '../../src/edge/edge.js';
import { createLogger } from '../../src/observability/logger.js';
import { startBackend, type TestBackend } from '../support/backend-server.js';
import { edgeRefusal, RawSmtpClient } from '../support/smtp-client.js';

describe('session IDs in replies and log lines', () => {
  let backend: TestBackend;
  let edge: Edge;
  const logs: Record<string, unknown>[] = [];

  before(async () => {
    backend = await startBackend();
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    const input = {
      hostname: 'edge.test',
      acceptedDomains: ['example.com'],
      listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
      senderFilter: { blocked: ['spam@bad.example'] },
      dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
      backend: { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000 },
      log: { level: 'info' },
      shutdownGraceMs: 200,
    };
    edge = await startEdge({ load: async (): Promise<Rules> => RulesSchema.parse(structuredClone(input)) }, { logger: createLogger({ level: 'info', destination: sink }) });
  });
  after(async () => {
    await edge.close(200);
    await backend.close();
  });

  async function greeted(): Promise<RawSmtpClient> {
    const c = await RawSmtpClient.connect(edge.addresses.main!.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    return c;
  }

  async function logLine(pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    for (let i = 0; i < 100; i++) {
      const hit = logs.find(pred);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`no such log line in ${JSON.stringify(logs)}`);
  }

  it('a refusal ends with the ID its decision was logged under', async () => {
    const c = await greeted();
    const r = await c.cmd('MAIL FROM:<spam@bad.example>');
    assert.match(r.line, edgeRefusal('550 5.1.0 Sender Denied'));
    const id = /\[([0-9a-v]{16})\]$/.exec(r.line)?.[1];
    const decision = await logLine((l) => l.event === 'decision' && l.step === 7 && l.action === 'reject');
    assert.equal(decision.session, id);
    c.quit();
  });

  it('a client that resets mid-transaction: the connection error is logged with its session ID', async () => {
    const c = await greeted();
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    const accepted = await logLine((l) => l.event === 'decision' && l.step === 7 && l.action === 'accept');
    c.kill();
    const error = await logLine((l) => l.msg === 'client connection error');
    assert.equal(error.session, accepted.session);
  });
});
