/**
 * `shadow: { rules }`: a candidate rule set judges every session of a real `portcullis serve` beside
 * the live one, with no effect on what the client gets; disagreements are counted and logged with
 * the session id, and SIGHUP reloads the candidate like the live set.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBackend, type TestBackend } from '../support/backend-server.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { sample } from '../support/metrics-text.js';
import { startHarness } from '../support/edge-harness.js';
import { serve } from '../support/serve-process.js';
import { freePort, swaksSession } from '../interop/peers.js';

function rules(backendPort: number, dns: string, metricsPort: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    hostname: 'edge.test',
    acceptedDomains: ['example.com'],
    listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
    dns: { servers: [dns], timeoutMs: 1000, healthCheckIntervalSec: 0 },
    backend: { url: `smtp://127.0.0.1:${backendPort}`, timeoutMs: 2000 },
    metrics: { listen: `127.0.0.1:${metricsPort}` },
    badmail: 'badmail',
    log: { level: 'info' },
    shutdownGraceMs: 500,
    ...extra,
  });
}

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** Polls the metric until it reaches `want` (the shadow's verdicts are judged off the session's path). */
async function metricReaches(port: number, labels: Record<string, string>, want: number): Promise<string> {
  for (let i = 0; ; i++) {
    const text = await scrape(port);
    if (sample(text, 'portcullis_shadow_total', labels) >= want || i === 50) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('shadow rule set', () => {
  let backend: TestBackend;
  let dns: TestDnsServer;
  let dir: string;
  before(async () => {
    backend = await startBackend();
    // The client, 127.0.0.5, is listed only on the zone the candidate asks (127.0.0.2 is the RFC 5782 test entry).
    dns = await startDnsServer({ records: { '5.0.0.127.candidate.test': { A: ['127.0.0.2'] }, '2.0.0.127.candidate.test': { A: ['127.0.0.2'] } } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-shadow-'));
  });
  after(async () => {
    await backend.close();
    await dns.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a candidate that refuses what the live set accepts changes nothing for the client; the metric and a log line with the session id say where they differ; SIGHUP swaps the candidate', async () => {
    const metricsPort = await freePort();
    const live = path.join(dir, 'live.yaml');
    const candidate = path.join(dir, 'candidate.yaml');
    const candidateRules = (blocked: string): string =>
      rules(backend.port, dns.address, metricsPort, {
        senderFilter: { blocked: [blocked] },
        connectionFilter: { rules: [{ name: 'candidate-bl', zone: 'candidate.test' }] },
      });
    fs.writeFileSync(candidate, candidateRules('spam@bad.example'));
    fs.writeFileSync(live, rules(backend.port, dns.address, metricsPort, { shadow: { rules: 'candidate.yaml' } }));
    const s = await serve(live);
    try {
      const before = backend.messages.length;
      const session = { port: s.port, localAddress: '127.0.0.5', helo: 'client.example', to: ['bob@example.com'], headerFrom: 'spam@bad.example', subject: 'shadowed' };
      const r = await swaksSession({ ...session, from: 'spam@bad.example' });
      assert.equal(r.mail?.code, 250, 'the live set accepts the sender the candidate blocks');
      assert.equal(r.rcpt[0]?.code, 250);
      assert.equal(r.dataEnd?.code, 250);
      assert.equal(backend.messages.length, before + 1, 'the message reached the back end');

      let text = await metricReaches(metricsPort, { step: '7', live: 'accept', shadow: 'reject' }, 1);
      assert.equal(sample(text, 'portcullis_shadow_total', { step: '7', live: 'accept', shadow: 'reject' }), 1);
      assert.equal(sample(text, 'portcullis_shadow_total', { step: '2', live: 'accept', shadow: 'accept' }), 1, 'agreements are counted too');
      const disagreement = await s.waitLog((l) => l.event === 'shadow');
      const received = backend.messages.at(-1)!;
      const sessionId = /\bid (\S+?);?\s/.exec(received.data.toString('latin1'))?.[1];
      assert.equal(disagreement.session, sessionId, 'the log line names the session (the id of its Received: field)');
      assert.deepEqual(
        { live: (disagreement.live as Record<string, unknown>).action, shadow: disagreement.shadow, address: disagreement.address },
        { live: 'accept', shadow: { action: 'reject', step: 7, check: 'sender filter (envelope sender)', rule: 'spam@bad.example', reply: '550 5.1.0 Sender Denied' }, address: 'spam@bad.example' },
      );

      // Another sender: the candidate's DNSBL rule (a zone the live set never asks) refuses the recipient.
      const r2 = await swaksSession({ ...session, from: 'alice@example.org' });
      assert.equal(r2.rcpt[0]?.code, 250);
      assert.equal(r2.dataEnd?.code, 250);
      text = await metricReaches(metricsPort, { step: '9', rule: 'candidate-bl', live: 'accept', shadow: 'reject' }, 1);
      assert.equal(sample(text, 'portcullis_shadow_total', { step: '9', rule: 'candidate-bl', live: 'accept', shadow: 'reject' }), 1);
      assert.ok(dns.queries.includes('5.0.0.127.candidate.test'), 'the candidate asked its own zone');

      // A broken candidate on SIGHUP: logged with file:line:key, the old candidate stays.
      fs.writeFileSync(candidate, 'hostname: edge.test\nacceptedDomains: [example.com]\nlisteners: [{ name: main, listen: "127.0.0.1:0", bogus: 1 }]\n');
      s.child.kill('SIGHUP');
      const refused = await s.waitLog((l) => l.msg === 'shadow rule set refused: the shadow in force stays');
      assert.match(String(refused.err), new RegExp(`^${candidate.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: listeners\\[0\\]\\.bogus: unknown key 'bogus'`));
      await s.waitLog((l) => l.msg === 'rule set reloaded');
      await swaksSession({ ...session, from: 'spam@bad.example' });
      await metricReaches(metricsPort, { step: '7', live: 'accept', shadow: 'reject' }, 2);

      // A good candidate that blocks someone else: the old sender now agrees.
      fs.writeFileSync(candidate, candidateRules('other@bad.example'));
      s.child.kill('SIGHUP');
      await s.waitLog((l) => l.msg === 'rule set reloaded' && s.lines.filter((x) => x.msg === 'rule set reloaded').length === 2);
      await swaksSession({ ...session, from: 'spam@bad.example' });
      // Its RCPT TO is judged now (a candidate that refused the sender judged no recipient), and refused at step 9.
      text = await metricReaches(metricsPort, { step: '9', rule: 'candidate-bl', live: 'accept', shadow: 'reject' }, 2);
      assert.equal(sample(text, 'portcullis_shadow_total', { step: '7', live: 'accept', shadow: 'reject' }), 2, 'the new candidate no longer blocks the sender');
      assert.equal(sample(text, 'portcullis_shadow_total', { step: '9', rule: 'candidate-bl', live: 'accept', shadow: 'reject' }), 2);
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    }
  });

  it("a candidate's greylisting and rate limits are not run: it counts on no store, so a first sight is no disagreement", async () => {
    const metricsPort = await freePort();
    const live = path.join(dir, 'live-grey.yaml');
    fs.writeFileSync(path.join(dir, 'candidate-grey.yaml'), rules(backend.port, dns.address, metricsPort, {
      greylisting: { delaySec: 300 },
      rateLimits: { client: { messagesPerMinute: 1 } },
    }));
    fs.writeFileSync(live, rules(backend.port, dns.address, metricsPort, { shadow: { rules: 'candidate-grey.yaml' } }));
    const s = await serve(live);
    try {
      const session = { port: s.port, helo: 'client.example', to: ['bob@example.com'], headerFrom: 'a@b.example', subject: 'grey' };
      for (const from of ['a@example.org', 'b@example.org']) assert.equal((await swaksSession({ ...session, from })).dataEnd?.code, 250);
      const text = await metricReaches(metricsPort, { step: '15', live: 'accept', shadow: 'accept' }, 2);
      assert.equal(sample(text, 'portcullis_shadow_total', { step: '15', live: 'accept', shadow: 'accept' }), 2, 'both messages were judged to the end by the candidate');
      assert.doesNotMatch(text, /^portcullis_shadow_total\{[^}]*shadow="tempfail"/m, 'no greylisting or rate-limit verdict from the candidate');
      assert.doesNotMatch(text, /^portcullis_greylisting_total\{/m, 'nothing counted by greylisting');
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    }
  });

  it('no shadow configured: no shadow series and no shadow log lines', async () => {
    const metricsPort = await freePort();
    const live = path.join(dir, 'plain.yaml');
    fs.writeFileSync(live, rules(backend.port, dns.address, metricsPort));
    const s = await serve(live);
    try {
      const r = await swaksSession({ port: s.port, helo: 'client.example', from: 'spam@bad.example', to: ['bob@example.com'], headerFrom: 'a@b.example', subject: 'plain' });
      assert.equal(r.dataEnd?.code, 250);
      const text = await scrape(metricsPort);
      assert.doesNotMatch(text, /^portcullis_shadow_total\{/m);
      assert.equal(s.lines.filter((l) => l.event === 'shadow').length, 0);
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    }
  });

  it("the live reply never waits on the candidate's slower DNS: the candidate's verdict is compared when its lookup completes", async () => {
    const slow = await startDnsServer({ records: { '1.0.0.127.slow.test': { delayMs: 1500 }, '2.0.0.127.slow.test': { A: ['127.0.0.2'] } } });
    const candidate = path.join(dir, 'slow-candidate.yaml');
    fs.writeFileSync(
      candidate,
      JSON.stringify({
        hostname: 'edge.test',
        acceptedDomains: ['example.com'],
        listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
        connectionFilter: { rules: [{ name: 'slow-bl', zone: 'slow.test' }] },
      }),
    );
    const h = await startHarness((r) => {
      r.dns = { servers: [slow.address], timeoutMs: 4000, healthCheckIntervalSec: 0 };
      r.shadow = { rules: candidate };
    });
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
      const asked = Date.now();
      assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
      const waited = Date.now() - asked;
      assert.ok(waited < 1000, `the live RCPT TO was answered in ${waited} ms, before the candidate's 1500 ms lookup`);
      assert.equal(sample(await h.metrics.render(), 'portcullis_shadow_total', { step: '12' }), 0, 'not yet compared');
      c.quit();
      let text = '';
      for (let i = 0; i < 60 && sample(text, 'portcullis_shadow_total', { step: '12' }) === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        text = await h.metrics.render();
      }
      assert.equal(sample(text, 'portcullis_shadow_total', { step: '12', rule: 'none', live: 'accept', shadow: 'accept' }), 1);
      assert.equal(slow.queries.filter((q) => q === '1.0.0.127.slow.test').length >= 1, true);
    } finally {
      await h.close();
      await slow.close();
    }
  });
});
