/**
 * The relay metrics after real SMTP traffic, as /metrics shows them: the counter and the duration
 * histogram (kept by the edge as plain numbers and exported in prom-client's form) by outcome,
 * over one reused client connection and back-end pool session, with scrapes between the messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { sendMail } from '../support/smtp-client.js';

const MSG = 'From: <alice@example.org>\r\nSubject: t\r\n\r\nbody\r\n';

test('relay counter and duration histogram by outcome after messages on one reused connection, scraped between them', async () => {
  const h = await startHarness();
  try {
    const c = await h.connect('main');
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    for (let i = 0; i < 3; i++) {
      const r = await sendMail(c, 'alice@example.org', ['bob@example.com'], MSG);
      assert.match(r.end?.line ?? '', /^250 /);
      if (i === 1) await h.metrics.render();
    }
    h.backend.behaviour = { dataEnd: { code: 452, text: 'Insufficient system storage' } };
    const refused = await sendMail(c, 'alice@example.org', ['bob@example.com'], MSG);
    assert.match(refused.end?.line ?? '', /^452 /);
    h.backend.behaviour = {};

    const text = await h.metrics.render();
    assert.equal(h.backend.messages.length, 3);
    assert.match(text, /^# TYPE portcullis_relay_seconds histogram$/m);
    assert.match(text, /^portcullis_relay_total\{outcome="delivered"\} 3$/m);
    assert.match(text, /^portcullis_relay_total\{outcome="tempfail"\} 1$/m);
    assert.match(text, /^portcullis_relay_seconds_count\{outcome="delivered"\} 3$/m);
    assert.match(text, /^portcullis_relay_seconds_bucket\{le="\+Inf",outcome="delivered"\} 3$/m);
    assert.match(text, /^portcullis_relay_seconds_bucket\{le="120",outcome="delivered"\} 3$/m);
    assert.match(text, /^portcullis_relay_seconds_count\{outcome="tempfail"\} 1$/m);
    const sum = sample(text, 'portcullis_relay_seconds_sum', { outcome: 'delivered' });
    assert.ok(sum > 0 && sum < 30, `sum of the delivered relays' durations: ${sum} s`);
    // Every bucket holds at least the one below it.
    const buckets = [...text.matchAll(/^portcullis_relay_seconds_bucket\{le="([^"]+)",outcome="delivered"\} (\d+)$/gm)].map((m) => Number(m[2]));
    assert.equal(buckets.length, 15);
    assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b));
    // The sender step's decision for each of the four messages, counted under its labels.
    assert.equal(sample(text, 'portcullis_verdicts_total', { step: '7' }), 4);
  } finally {
    await h.close();
  }
});
