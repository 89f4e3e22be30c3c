/**
 * How the engine's SMTP listener ends a connection: after QUIT's 221 it closes the socket at once
 * (no half-open wait for the client), so a client's reset after 221 (SO_LINGER 0, as Postfix's
 * smtp-source closes) costs nothing and reports nothing, while a reset in the middle of a transaction
 * is still reported.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import type { TransportEngine } from '../../src/transport/engine.js';
import { sample } from '../support/metrics-text.js';
import { RawSmtpClient, sendMail } from '../support/smtp-client.js';
import { engineRules, maildirFiles, message, startEngine, waitFor } from './engine-harness.js';

let dir: string;
let engine: TransportEngine;
const warnings: Record<string, unknown>[] = [];

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-receive-close-'));
  const logger = createLogger({ level: 'warn', destination: { write: (s: string) => void warnings.push(JSON.parse(s) as Record<string, unknown>) } });
  engine = await startEngine(engineRules(dir), { logger });
});
after(async () => {
  await engine.close();
  await rm(dir, { recursive: true, force: true });
});

async function greeted(options: { halfOpen?: boolean } = {}): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(engine.address.port, '127.0.0.1', options);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example.test')).code, 250);
  return c;
}

function receiveProblems(): Record<string, unknown>[] {
  return warnings.filter((l) => l.msg === 'transport receive problem');
}

test('after QUIT the engine closes the connection at once: a client keeping its side open is reset when it writes again', async () => {
  const c = await greeted({ halfOpen: true });
  assert.equal((await c.cmd('QUIT')).line, '221 2.0.0 Bye');
  assert.equal(await c.closedByServer(), true, 'EOF after the 221');
  // A half-closed socket (smtp-server's own way) swallows writes for up to 5 s; a closed one resets.
  assert.equal(await c.resetOnWrite(2500), true, 'the connection was reset within 2.5 s');
  c.kill();
});

test('a client that resets after 221 (SO_LINGER 0) leaves no warning and no metric change; its message is delivered', async () => {
  const before = await engine.metrics.render();
  const c = await greeted();
  const { end } = await sendMail(c, 'sender@remote.test', ['alice@example.test'], message('Reset after QUIT'));
  assert.equal(end?.code, 250);
  assert.equal((await c.cmd('QUIT')).code, 221);
  c.kill();
  await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === 1, 10_000, 'the message in the Maildir');
  // Let any report of the reset arrive before looking for it.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(receiveProblems(), []);
  const now = await engine.metrics.render();
  for (const outcome of ['refused', 'storage-error'])
    assert.equal(sample(now, 'portcullis_transport_received_total', { outcome }), sample(before, 'portcullis_transport_received_total', { outcome }), outcome);
  assert.equal(sample(now, 'portcullis_transport_received_total', { outcome: 'queued' }), sample(before, 'portcullis_transport_received_total', { outcome: 'queued' }) + 1);
});

test('a client that resets in the middle of a transaction is still reported as a connection problem', async () => {
  const c = await greeted();
  assert.equal((await c.cmd('MAIL FROM:<sender@remote.test>')).code, 250);
  c.kill();
  await waitFor(() => receiveProblems().length > 0, 5000, 'the reset reported');
  assert.equal(receiveProblems()[0]?.kind, 'connection');
  assert.match(String(receiveProblems()[0]?.detail), /ECONNRESET/);
});
