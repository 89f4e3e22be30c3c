/**
 * Sender authentication on the edge, over real SMTP sessions on loopback, real DNS (the test server
 * publishes SPF, DKIM key and DMARC records) and a real recording back end: the replies, what the
 * back end received (Authentication-Results on top, forged ones gone), the spool file, the metrics.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { signed, signingKey, type SigningKey } from '../support/sender-auth.js';
import { sendMail, type RawSmtpClient, edgeRefusal } from '../support/smtp-client.js';

const AR = 'Authentication-Results: edge.test;';

function message(from: string, body = 'Hello.\r\n', extra = ''): string {
  return `${extra}From: <${from}>\r\nTo: <bob@example.com>\r\nSubject: test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n${body}`;
}

async function greeted(h: Harness, listener: string): Promise<RawSmtpClient> {
  const c = await h.connect(listener);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

/** What the back end got, as text, and its header section up to our Received: field's end. */
function lastDelivered(h: Harness): string {
  const m = h.backend.messages.at(-1);
  assert.ok(m, 'the back end received a message');
  return m.data.toString('latin1');
}

describe('sender authentication at the edge', () => {
  let dns: TestDnsServer;
  let h: Harness;
  let key: SigningKey;
  let spoolDir: string;
  before(async () => {
    key = signingKey();
    spoolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-spool-test-'));
    dns = await startDnsServer({
      records: {
        // 127.0.0.1, the test client, may send for these domains ...
        'good.example': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
        'sel._domainkey.good.example': { TXT: [key.record] },
        '_dmarc.good.example': { TXT: ['v=DMARC1; p=reject'] },
        // ... and not for these.
        'forged.example': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
        'partner.example': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
        'strict.example': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
        '_dmarc.strict.example': { TXT: ['v=DMARC1; p=reject'] },
        '_dmarc.quarantine.example': { TXT: ['v=DMARC1; p=quarantine'] },
        'broken-dns.example': { mode: 'servfail' },
      },
    });
    h = await startHarness((r) => {
      r.dns = { servers: [dns.address], timeoutMs: 500, healthCheckIntervalSec: 0 };
      r.listeners = [
        { name: 'main', listen: '127.0.0.1:0' },
        { name: 'auth', listen: '127.0.0.1:0', senderAuth: { enforceSpf: true, enforceDmarc: true } },
        { name: 'report', listen: '127.0.0.1:0', senderAuth: { enforceSpf: true, enforceDmarc: true, reportOnly: true } },
        { name: 'strict', listen: '127.0.0.1:0', senderAuth: { enforceSpf: true, onTempError: 'tempfail' } },
        { name: 'small', listen: '127.0.0.1:0', senderAuth: {}, limits: { maxMessageSize: 20_000 } },
      ];
      r.senderAuth = { exempt: { domains: ['partner.example'] }, spool: { memoryBytes: 4096, dir: spoolDir } };
    });
  });
  after(async () => {
    await h.close();
    await dns.close();
    fs.rmSync(spoolDir, { recursive: true, force: true });
  });

  it('a listener without senderAuth asks no SPF, DKIM or DMARC question and stamps nothing', async () => {
    const asked = dns.queries.length;
    const c = await greeted(h, 'main');
    const r = await sendMail(c, 'a@forged.example', ['bob@example.com'], message('a@strict.example'));
    assert.equal(r.end?.code, 250);
    c.quit();
    assert.equal(dns.queries.length, asked);
    assert.doesNotMatch(lastDelivered(h), /Authentication-Results/);
  });

  it('SPF fail is 550 5.7.23 at MAIL FROM; the back end never hears of the sender', async () => {
    const c = await greeted(h, 'auth');
    const r = await c.cmd('MAIL FROM:<b@forged.example>');
    assert.match(r.line, edgeRefusal('550 5.7.23 SPF validation failed: forged.example does not designate 127.0.0.1 as permitted sender'));
    c.quit();
    assert.ok(!h.backend.mailFroms.some((m) => m.includes('b@forged.example')), 'not relayed');
    assert.equal(sample(await h.metrics.render(), 'portcullis_auth_results_total', { mechanism: 'spf', result: 'fail', action: 'reject' }), 1);
  });

  it('a signed, aligned message is relayed with our Authentication-Results on top and a forged one of ours removed', async () => {
    const forged = `Authentication-Results: EDGE.TEST; dkim=pass header.d=bank.example; dmarc=pass\r\nAuthentication-Results: upstream.example; spf=pass\r\n`;
    const original = await signed(message('alice@good.example'), 'good.example', key);
    const c = await greeted(h, 'auth');
    const r = await sendMail(c, 'alice@good.example', ['bob@example.com'], forged + original);
    assert.equal(r.end?.code, 250);
    c.quit();
    const got = lastDelivered(h);
    assert.ok(got.startsWith('Received: from client.example'), 'our trace field first');
    const ours = got.split(AR);
    assert.equal(ours.length, 2, 'exactly one Authentication-Results of ours');
    assert.match(ours[1]!, /^\r\n\tdkim=pass header\.i=@good\.example header\.s=sel/);
    assert.match(ours[1]!, /spf=pass \(edge\.test: domain of alice@good\.example designates 127\.0\.0\.1/);
    assert.match(ours[1]!, /arc=none;\r\n\tdmarc=pass \(p=REJECT arc=none\) header\.from=good\.example/);
    assert.doesNotMatch(got, /bank\.example/, 'the forged field is gone');
    assert.match(got, /Authentication-Results: upstream\.example; spf=pass\r\n/, "someone else's field stays");
    assert.ok(got.endsWith(original), 'the message itself is relayed unchanged, signature included');
    const text = await h.metrics.render();
    assert.equal(sample(text, 'portcullis_auth_results_total', { mechanism: 'dkim', result: 'pass', action: 'accept' }), 1);
    assert.equal(sample(text, 'portcullis_auth_results_total', { mechanism: 'dmarc', result: 'pass', action: 'accept' }), 1);
  });

  it('DMARC fail under p=reject is 550 5.7.1 after the final dot; the back end gets no message', async () => {
    const delivered = h.backend.messages.length;
    const c = await greeted(h, 'auth');
    // SPF passes for the envelope's domain, which is not the From: domain: no alignment, no signature.
    const r = await sendMail(c, 'alice@good.example', ['bob@example.com'], message('ceo@strict.example'));
    assert.match(r.end?.line ?? '', edgeRefusal('550 5.7.1 Message rejected: DMARC policy of strict.example'));
    assert.equal((await c.cmd('NOOP')).code, 250, 'the session goes on');
    c.quit();
    assert.equal(h.backend.messages.length, delivered);
    assert.equal(sample(await h.metrics.render(), 'portcullis_auth_results_total', { mechanism: 'dmarc', result: 'fail', action: 'reject' }), 1);
  });

  it('DMARC fail under p=quarantine is relayed with X-Portcullis-Quarantine for the back end to act on', async () => {
    const c = await greeted(h, 'auth');
    const r = await sendMail(c, 'alice@good.example', ['bob@example.com'], message('news@quarantine.example'));
    assert.equal(r.end?.code, 250);
    c.quit();
    assert.match(lastDelivered(h), /\r\nX-Portcullis-Quarantine: dmarc; domain=quarantine\.example; policy=quarantine\r\nAuthentication-Results: edge\.test;/);
    assert.equal(sample(await h.metrics.render(), 'portcullis_auth_results_total', { mechanism: 'dmarc', result: 'fail', action: 'quarantine' }), 1);
  });

  it('report-only: SPF fail and a DMARC reject are counted as `report` and the mail is relayed', async () => {
    const c = await greeted(h, 'report');
    const r = await sendMail(c, 'a@forged.example', ['bob@example.com'], message('ceo@strict.example'));
    assert.equal(r.mail.code, 250);
    assert.equal(r.end?.code, 250);
    c.quit();
    assert.match(lastDelivered(h), /spf=fail .*\r\n\tarc=none;\r\n\tdmarc=fail/s);
    const text = await h.metrics.render();
    assert.equal(sample(text, 'portcullis_auth_results_total', { mechanism: 'spf', result: 'fail', action: 'report' }), 1);
    assert.equal(sample(text, 'portcullis_auth_results_total', { mechanism: 'dmarc', result: 'fail', action: 'report' }), 1);
    assert.equal(sample(text, 'portcullis_verdicts_total', { check: 'SPF', action: 'reject', report_only: 'true' }), 1);
  });

  it('an exempt domain is stamped spf=fail but not refused, and counted as `exempt`', async () => {
    const c = await greeted(h, 'auth');
    const r = await sendMail(c, 'list@partner.example', ['bob@example.com'], message('list@partner.example'));
    assert.equal(r.mail.code, 250);
    assert.equal(r.end?.code, 250);
    c.quit();
    assert.match(lastDelivered(h), /spf=fail/);
    assert.equal(sample(await h.metrics.render(), 'portcullis_auth_results_total', { mechanism: 'spf', result: 'fail', action: 'exempt' }), 1);
  });

  it('a temporary DNS error is 451 4.7.24 where onTempError is tempfail, and accepted (spf=temperror) elsewhere', async () => {
    const c = await greeted(h, 'strict');
    assert.match((await c.cmd('MAIL FROM:<a@broken-dns.example>')).line, edgeRefusal('451 4.7.24 SPF validation error for broken-dns.example, try again later'));
    c.quit();
    const d = await greeted(h, 'auth');
    const r = await sendMail(d, 'a@broken-dns.example', ['bob@example.com'], message('a@broken-dns.example'));
    assert.equal(r.end?.code, 250);
    d.quit();
    assert.match(lastDelivered(h), /spf=temperror/);
  });

  it('a message past the spool memory bound goes through a temporary file, relayed whole, and the file is removed', async () => {
    const body = Array.from({ length: 4000 }, (_, i) => `line ${i} ${'x'.repeat(60)}\r\n`).join('');
    const original = await signed(message('alice@good.example', body), 'good.example', key);
    const c = await greeted(h, 'auth');
    const r = await sendMail(c, 'alice@good.example', ['bob@example.com'], original);
    assert.equal(r.end?.code, 250);
    c.quit();
    const got = lastDelivered(h);
    assert.ok(got.endsWith(original), `all ${original.length} bytes relayed unchanged`);
    assert.match(got, /dkim=pass/, 'the body hash was computed over the spooled file');
    assert.deepEqual(fs.readdirSync(spoolDir), [], 'no spool file is left');
  });

  it('a refused message that was spooled to disk leaves no file either', async () => {
    const c = await greeted(h, 'auth');
    const r = await sendMail(c, 'alice@good.example', ['bob@example.com'], message('ceo@strict.example', 'y'.repeat(50_000) + '\r\n'));
    assert.equal(r.end?.code, 550);
    c.quit();
    assert.deepEqual(fs.readdirSync(spoolDir), []);
  });

  it('a message past maxMessageSize while it is spooled is 552 5.3.4, and the spool file is removed', async () => {
    const delivered = h.backend.messages.length;
    const c = await greeted(h, 'small');
    const r = await sendMail(c, 'alice@good.example', ['bob@example.com'], message('alice@good.example', 'z'.repeat(30_000) + '\r\n'));
    assert.match(r.end?.line ?? '', /^552 5\.3\.4 /);
    c.quit();
    assert.equal(h.backend.messages.length, delivered);
    assert.deepEqual(fs.readdirSync(spoolDir), []);
  });

  it('a client that goes away while its message is spooled on disk leaves no file, and the back end gets no message', async () => {
    const delivered = h.backend.messages.length;
    const c = await greeted(h, 'auth');
    assert.equal((await c.cmd('MAIL FROM:<alice@good.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(message('alice@good.example', 'w'.repeat(40_000) + '\r\n'));
    // Bounded wait until the edge has spooled past memory (a file exists), then the client vanishes.
    for (let i = 0; i < 100 && fs.readdirSync(spoolDir).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(fs.readdirSync(spoolDir).length, 1, 'the message went to a spool file');
    c.kill();
    for (let i = 0; i < 100 && fs.readdirSync(spoolDir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(fs.readdirSync(spoolDir), []);
    assert.equal(h.backend.messages.length, delivered);
  });
});
