import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../src/observability/metrics.js';
import { startMetricsServer } from '../../src/observability/http.js';

test('/metrics serves the Prometheus text over HTTP on port 0', async () => {
  const metrics = new Metrics();
  metrics.sessionOpened('public');
  metrics.reply(554);
  const server = await startMetricsServer('127.0.0.1:0', metrics);
  try {
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    const res = await fetch(`http://${server.address}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const body = await res.text();
    assert.match(body, /^# TYPE portcullis_sessions_total counter$/m);
    assert.match(body, /^portcullis_sessions_total\{listener="public"\} 1$/m);
    assert.match(body, /^portcullis_replies_total\{class="5xx"\} 1$/m);
  } finally {
    await server.close();
  }
});

test('/healthz answers JSON: 200 when ok, 503 when the probe says otherwise or fails', async () => {
  let report: { status: string; zones?: number } = { status: 'ok', zones: 2 };
  let fail = false;
  const server = await startMetricsServer('[::1]:0', new Metrics(), () => {
    if (fail) throw new Error('rules not loaded');
    return report;
  });
  try {
    assert.match(server.address, /^\[::1\]:\d+$/);
    let res = await fetch(`http://${server.address}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', zones: 2 });
    report = { status: 'degraded' };
    res = await fetch(`http://${server.address}/healthz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'degraded' });
    fail = true;
    res = await fetch(`http://${server.address}/healthz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'error', reason: 'rules not loaded' });
    res = await fetch(`http://${server.address}/nope`);
    assert.equal(res.status, 404);
    await res.text();
    res = await fetch(`http://${server.address}/metrics`, { method: 'POST' });
    assert.equal(res.status, 405);
    await res.text();
  } finally {
    await server.close();
  }
});

test('a busy port is an error at start, not a silent failure', async () => {
  const first = await startMetricsServer('127.0.0.1:0', new Metrics());
  try {
    await assert.rejects(startMetricsServer(first.address, new Metrics()), /EADDRINUSE/);
  } finally {
    await first.close();
  }
});
