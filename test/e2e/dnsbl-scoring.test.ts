/**
 * Step 9 as a score, and DNS allowlists, through the real edge: a real loopback DNS server serving
 * the lists' answers, clients presented through the PROXY protocol, a real back end. What a client
 * sees at RCPT TO, what reaches the back end, and what the metrics count.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type TestDnsServer, type TestRecords } from '../support/dns-server.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { RawSmtpClient, sendMail, edgeRefusal } from '../support/smtp-client.js';

const MSG = 'From: <alice@example.org>\r\nSubject: t\r\n\r\nbody\r\n';

/** A healthy zone (RFC 5782 test points right) listing each address with its codes. */
function zone(name: string, listed: Record<string, string[]>): Record<string, TestRecords> {
  const out: Record<string, TestRecords> = { [`2.0.0.127.${name}`]: { A: ['127.0.0.2'] } };
  for (const [ip, codes] of Object.entries(listed)) out[`${ip.split('.').reverse().join('.')}.${name}`] = { A: codes };
  return out;
}

const RECORDS: Record<string, TestRecords> = {
  ...zone('bl.test', { '192.0.2.10': ['127.0.0.2'], '192.0.2.11': ['127.0.0.2'], '192.0.2.12': ['127.0.0.2'] }),
  ...zone('codes.test', { '192.0.2.10': ['127.0.0.2', '127.0.0.4'] }),
  ...zone('wl.test', { '192.0.2.11': ['127.0.10.2'] }),
  // sick.test lists everyone, its negative test point included: unhealthy, so it must count for nothing.
  ...zone('sick.test', { '127.0.0.1': ['127.0.0.2'], '192.0.2.10': ['127.0.0.2'], '192.0.2.11': ['127.0.0.2'], '192.0.2.12': ['127.0.0.2'], '192.0.2.13': ['127.0.0.2'] }),
};

/** Connects as `client` through the PROXY protocol, reads the greeting, says EHLO. */
async function as(h: Harness, client: string): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(h.port('lb'));
  c.write(`PROXY TCP4 ${client} 127.0.0.1 40000 25\r\n`);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

function harness(dns: TestDnsServer, connectionFilter: Record<string, unknown>): Promise<Harness> {
  return startHarness((r) => {
    r.listeners = [{ name: 'lb', listen: '127.0.0.1:0', proxyProtocol: { from: ['127.0.0.1'] } }];
    r.dns = { servers: [dns.address], timeoutMs: 500, healthCheckIntervalSec: 0 };
    r.connectionFilter = connectionFilter;
    r.recipientFilter = { rejectUnknown: true };
    r.directory = { addresses: ['bob@example.com', 'postmaster@example.com'] };
  });
}

describe('DNSBL scoring mode: the sum of the lists\' weights against threshold and allowThreshold', () => {
  let dns: TestDnsServer;
  let h: Harness;
  before(async () => {
    dns = await startDnsServer({ records: RECORDS });
    h = await harness(dns, {
      exceptions: ['postmaster@example.com'],
      scoring: {
        threshold: 5,
        allowThreshold: -5,
        lists: [
          { name: 'Block', zone: 'bl.test', weight: 3 },
          { name: 'Codes', zone: 'codes.test', weights: { '127.0.0.2': 1, '127.0.0.4': 4 }, provider: 'Codes Inc', message: '%0 refused: listed by %2' },
          { name: 'Welcome', zone: 'wl.test', match: { mask: '0.0.10.0' }, weight: -10 },
          { name: 'Sick', zone: 'sick.test', weight: 10 },
        ],
      },
    });
  });
  after(async () => {
    await h.close();
    await dns.close();
  });

  it('a score at the threshold or above is refused with the top contributor\'s reply; the exception recipient still gets through', async () => {
    // Block +3, Codes +1 +4: 8, Codes the top contributor; Sick (unhealthy) adds nothing.
    const c = await as(h, '192.0.2.10');
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    assert.match((await c.cmd('RCPT TO:<bob@example.com>')).line, edgeRefusal('550 5.7.1 192.0.2.10 refused: listed by Codes Inc'));
    assert.equal((await c.cmd('RCPT TO:<postmaster@example.com>')).code, 250);
    c.quit();
    assert.ok(!h.backend.rcptTos.includes('bob@example.com'), 'a refused recipient never reaches the back end');
    const text = await h.metrics.render();
    assert.equal(sample(text, 'portcullis_verdicts_total', { step: '9', check: 'DNSBL score', rule: 'Codes', action: 'reject' }), 1);
    assert.equal(sample(text, 'portcullis_dnsbl_list_hits_total', { list: 'Codes', sign: 'positive' }), 1);
    assert.equal(sample(text, 'portcullis_dnsbl_list_points_total', { list: 'Codes', sign: 'positive' }), 5);
    assert.equal(sample(text, 'portcullis_dnsbl_list_hits_total', { list: 'Sick' }), 0, 'an unhealthy zone contributes nothing');
  });

  it('a negative weight (a DNSWL) bringing the score to allowThreshold or below allowlists the client: listed, yet delivered', async () => {
    // Block +3, Welcome -10: -7.
    const before = sample(await h.metrics.render(), 'portcullis_dnsbl_score_count');
    const c = await as(h, '192.0.2.11');
    const r = await sendMail(c, 'alice@example.org', ['bob@example.com'], MSG);
    c.quit();
    assert.deepEqual(r.rcpts.map((x) => x.code), [250]);
    assert.equal(r.end?.code, 250);
    assert.deepEqual(h.backend.messages.at(-1)?.to, ['bob@example.com']);
    const text = await h.metrics.render();
    assert.equal(sample(text, 'portcullis_verdicts_total', { step: '9', check: 'DNSBL score', rule: 'Welcome', action: 'accept' }), 1);
    assert.equal(sample(text, 'portcullis_dnsbl_list_points_total', { list: 'Welcome', sign: 'negative' }), 10);
    assert.equal(sample(text, 'portcullis_dnsbl_score_count') - before, 1);
    assert.equal(sample(text, 'portcullis_dnsbl_score_bucket', { le: '-5' }), 1, 'the session scored -7');
  });

  it('a score below the threshold passes, but above allowThreshold allowlists nothing; the other filters still decide', async () => {
    const c = await as(h, '192.0.2.12');
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.match((await c.cmd('RCPT TO:<nobody@example.com>')).line, /^550 5\.1\.1 /);
    c.quit();
    const text = await h.metrics.render();
    assert.equal(sample(text, 'portcullis_verdicts_total', { check: 'DNSBL score', rule: 'Block' }), 0);
  });

  it('a client only the unhealthy zone lists scores 0 and is accepted', async () => {
    const c = await as(h, '192.0.2.13');
    const r = await sendMail(c, 'alice@example.org', ['bob@example.com'], MSG);
    c.quit();
    assert.equal(r.end?.code, 250);
  });
});

describe('DNS allowlist rules in first-match mode', () => {
  let dns: TestDnsServer;
  let h: Harness;
  before(async () => {
    dns = await startDnsServer({ records: RECORDS });
    h = await harness(dns, {
      rules: [
        { name: 'Welcome', zone: 'wl.test', allow: true },
        { name: 'Block', zone: 'bl.test', message: '%0 blocked by %1' },
      ],
    });
  });
  after(async () => {
    await h.close();
    await dns.close();
  });

  it('an allowlist hit skips the block rules: the listed client is delivered; without it, refused', async () => {
    const welcome = await as(h, '192.0.2.11');
    const r = await sendMail(welcome, 'alice@example.org', ['bob@example.com'], MSG);
    welcome.quit();
    assert.equal(r.end?.code, 250);
    assert.deepEqual(h.backend.messages.at(-1)?.to, ['bob@example.com']);

    const blocked = await as(h, '192.0.2.12');
    assert.equal((await blocked.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    assert.match((await blocked.cmd('RCPT TO:<bob@example.com>')).line, edgeRefusal('550 5.7.1 192.0.2.12 blocked by Block'));
    blocked.quit();
    const text = await h.metrics.render();
    assert.equal(sample(text, 'portcullis_verdicts_total', { step: '9', check: 'DNS allowlist', rule: 'Welcome', action: 'accept' }), 1);
    assert.equal(sample(text, 'portcullis_verdicts_total', { step: '9', check: 'DNSBL rules', rule: 'Block', action: 'reject' }), 1);
  });
});
