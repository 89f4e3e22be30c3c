/**
 * Two edges (two nodes behind a balancer) sharing one real redis-server: a rate limit counted across
 * both, a greylisting triplet deferred on one and passed on the other; then Redis stopped mid-run:
 * mail still flows on the local view, with a warning in the log and the store's metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { closedPort } from '../support/backend-server.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { sendMail, edgeRefusal } from '../support/smtp-client.js';

async function until(ok: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('state shared across nodes in Redis', () => {
  let redis: TestRedis;
  let a: Harness;
  let b: Harness;
  const logA: string[] = [];
  let t = Date.now();
  const clock = { now: () => t, setTimeout, clearTimeout };
  before(async () => {
    redis = await startRedis();
    const rules = (r: Record<string, unknown>): void => {
      r.state = { url: redis.url, timeoutMs: 300 };
      r.rateLimits = { client: { connectionsPerMinute: 3 } };
      r.greylisting = { delaySec: 60, retryWindowHours: 1 };
    };
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void logA.push(line) } });
    a = await startHarness(rules, { clock, logger });
    b = await startHarness(rules, { clock });
    await until(async () => sample(await a.metrics.render(), 'portcullis_state_store_up') === 1, 'node A to reach Redis');
    await until(async () => sample(await b.metrics.render(), 'portcullis_state_store_up') === 1, 'node B to reach Redis');
  });
  after(async () => {
    await a.close();
    await b.close();
    await redis.close();
  });

  it('a connection limit counts the connections to both nodes', async () => {
    for (const node of [a, b, a]) {
      const c = await node.connect();
      assert.equal((await c.read()).code, 220);
      await c.cmd('QUIT');
    }
    const c = await b.connect();
    assert.match((await c.read()).line, edgeRefusal('421 4.7.0 Too many connections from your address, try again later'));
    t += 60_000;
  });

  it('a triplet deferred on node A passes on node B after the delay', async () => {
    const ca = await a.connect();
    await ca.read();
    await ca.cmd('EHLO client.example');
    const first = await sendMail(ca, 'x@example.org', ['bob@example.com'], 'Subject: 1\r\n\r\none\r\n');
    assert.equal(first.rcpts[0]?.code, 451);
    await ca.cmd('QUIT');
    t += 60_000;
    const cb = await b.connect();
    await cb.read();
    await cb.cmd('EHLO client.example');
    const retry = await sendMail(cb, 'x@example.org', ['bob@example.com'], 'Subject: 1\r\n\r\none\r\n');
    assert.equal(retry.end?.code, 250);
    assert.equal(b.backend.messages.length, 1);
    await cb.cmd('QUIT');
    t += 60_000;
  });

  it('Redis stopped mid-run: mail still flows on the local view; warned once, counted, and shared again once back', async () => {
    await redis.stop();
    const ca = await a.connect();
    assert.equal((await ca.read()).code, 220, 'no refusal of all mail');
    await ca.cmd('EHLO client.example');
    const first = await sendMail(ca, 'y@example.org', ['bob@example.com'], 'Subject: 2\r\n\r\ntwo\r\n');
    assert.equal(first.rcpts[0]?.code, 451, 'greylisting goes on locally');
    t += 60_000;
    await ca.cmd('RSET');
    const retry = await sendMail(ca, 'y@example.org', ['bob@example.com'], 'Subject: 2\r\n\r\ntwo\r\n');
    assert.equal(retry.end?.code, 250);
    assert.equal(a.backend.messages.length, 1);
    const m = await a.metrics.render();
    assert.equal(sample(m, 'portcullis_state_store_up'), 0);
    assert.ok(sample(m, 'portcullis_state_store_errors_total') > 0);
    const warnings = logA.filter((l) => l.includes('"event":"state-store"') && l.includes('"up":false'));
    assert.ok(warnings.length >= 1 && warnings.every((w) => w.includes('"level":"warn"')), logA.join(''));
    await redis.start();
    await until(async () => sample(await a.metrics.render(), 'portcullis_state_store_up') === 1, 'node A to reach Redis again');
    assert.ok(logA.some((l) => l.includes('"event":"state-store"') && l.includes('"up":true')));
    await ca.cmd('QUIT');
  });
});

describe('a state store unreachable at start-up', () => {
  it('the edge starts, warns, counts, and relays mail on the local view', async () => {
    const log: string[] = [];
    const port = await closedPort();
    const h = await startHarness(
      (r) => {
        r.state = { url: `redis://127.0.0.1:${port}`, timeoutMs: 200 };
        r.rateLimits = { client: { messagesPerMinute: 100 } };
      },
      { logger: createLogger({ level: 'info', destination: { write: (line: string) => void log.push(line) } }) },
    );
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      await c.cmd('EHLO client.example');
      assert.equal((await sendMail(c, 'x@example.org', ['bob@example.com'], 'Subject: 3\r\n\r\nthree\r\n')).end?.code, 250);
      assert.equal(h.backend.messages.length, 1);
      const m = await h.metrics.render();
      assert.equal(sample(m, 'portcullis_state_store_up'), 0);
      assert.ok(sample(m, 'portcullis_state_store_errors_total') >= 1);
      assert.ok(log.some((l) => l.includes('"level":"warn"') && l.includes('state store unreachable')), log.join(''));
      await c.cmd('QUIT');
    } finally {
      await h.close();
    }
  });
});
