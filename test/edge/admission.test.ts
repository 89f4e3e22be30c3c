/**
 * How a connection is admitted: greeted when no check has to wait, and answered 421 4.3.0 (then
 * closed, nothing else read) when a connection check fails; the next client is greeted as usual.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';
import type { ResourceSample } from '../../src/runtime/resource-probe.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { sendMail } from '../support/smtp-client.js';

describe('admitting a connection', () => {
  let h: Harness;
  const logs: Record<string, unknown>[] = [];
  let probeFails = false;
  const load: ResourceSample = { eventLoopLagMs: 0, rssMb: 0 };

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    const probe = {
      sample: (): ResourceSample => {
        if (probeFails) throw new Error('probe broke');
        return load;
      },
      stop: () => undefined,
    };
    h = await startHarness(
      (r) => {
        r.backPressure = { maxEventLoopLagMs: 500 };
      },
      { probe, logger: createLogger({ level: 'info', destination: sink }) },
    );
  });
  after(() => h.close());

  it('a client no check holds up is greeted and its mail relayed', async () => {
    const c = await h.connect();
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    const r = await sendMail(c, 'a@example.org', ['bob@example.com'], 'Subject: hi\r\n\r\nok\r\n');
    assert.equal(r.end?.code, 250);
    c.quit();
  });

  it('a connection check that fails answers 421 4.3.0 and closes, reads nothing, and is logged; the next client is greeted', async () => {
    probeFails = true;
    const c = await h.connect();
    try {
      c.send('EHLO client.example');
      assert.match((await c.read()).line, /^421 4\.3\.0 Service not available, closing channel/);
      assert.equal(await c.closedByServer(), true);
      assert.equal(c.unread, '', 'the EHLO sent early is never answered');
    } finally {
      probeFails = false;
    }
    assert.ok(logs.some((l) => l.msg === 'connection checks failed' && l.err === 'probe broke'));
    const next = await h.connect();
    assert.equal((await next.read()).code, 220);
    next.quit();
    assert.equal(sample(await h.metrics.render(), 'portcullis_replies_total', { class: '4xx' }), 1);
  });
});
