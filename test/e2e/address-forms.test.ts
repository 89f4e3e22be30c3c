/**
 * Envelope address forms RFC 5321 and IDN allow, through the real edge to Postfix's smtp-sink (which
 * logs the MAIL FROM and RCPT TO arguments exactly as they came on the wire): `postmaster` with no
 * domain, and a domain written as punycode or as Unicode, on either side (the client or the rule set).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sendMail, type RawSmtpClient } from '../support/smtp-client.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';

const MSG = 'From: <alice@example.org>\r\nSubject: t\r\n\r\nbody\r\n';

async function greeted(h: Harness): Promise<RawSmtpClient> {
  const c = await h.connect();
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

/** The MAIL FROM and RCPT TO arguments of each transaction smtp-sink has dumped, once `count` are there (bounded wait). */
async function sinkEnvelopes(sink: SmtpSink, count: number): Promise<string[][]> {
  for (let i = 0; ; i++) {
    const all = (await sink.transactions()).map((t) => [...t.matchAll(/^X-(?:Mail|Rcpt)-Args: <([^>]*)>/gm)].map((m) => m[1] as string));
    if (all.length >= count || i === 100) return all;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('envelope address forms: postmaster without a domain, IDN domains in either form', () => {
  let h: Harness;
  let sink: SmtpSink;
  before(async () => {
    sink = await startSmtpSink();
    h = await startHarness((r) => {
      // The first accepted domain is written in Unicode, the directory in both forms.
      r.acceptedDomains = ['bücher.test', 'example.com', 'xn--mller-kva.test'];
      r.directory = { addresses: ['postmaster@xn--bcher-kva.test', 'user@bücher.test', 'anna@müller.test'] };
      r.recipientFilter = { rejectUnknown: true };
      r.backend = { url: `smtp://127.0.0.1:${sink.port}`, timeoutMs: 2000 };
    });
  });
  after(async () => {
    await h.close();
    await sink.stop();
  });

  it('RCPT TO:<postmaster> is accepted and relayed as the postmaster of the first accepted domain', async () => {
    const c = await greeted(h);
    const r = await sendMail(c, 'alice@example.org', ['PostMaster'], MSG);
    assert.equal(r.rcpts[0]?.line, '250 2.1.5 Ok');
    assert.equal(r.end?.code, 250);
    c.quit();
    assert.deepEqual(await sinkEnvelopes(sink, 1), [['alice@example.org', 'postmaster@xn--bcher-kva.test']]);
  });

  it('a punycode recipient of a domain configured in Unicode (and the reverse) is local: found in the directory, relayed as punycode', async () => {
    const c = await greeted(h);
    const r = await sendMail(c, 'Alice@XN--BCHER-KVA.test', ['user@xn--bcher-kva.test', 'anna@XN--MLLER-KVA.test'], MSG);
    assert.deepEqual(r.rcpts.map((x) => x.code), [250, 250]);
    assert.equal(r.end?.code, 250);
    c.quit();
    // Not the UTF-8 smtp-server decoded them to: a back end without SMTPUTF8 could take neither. Local parts as written.
    const expected = ['Alice@xn--bcher-kva.test', 'user@xn--bcher-kva.test', 'anna@xn--mller-kva.test'];
    const envelopes = await sinkEnvelopes(sink, 2);
    assert.ok(envelopes.some((e) => JSON.stringify(e) === JSON.stringify(expected)), JSON.stringify(envelopes));
  });

  it('an unknown punycode recipient of an accepted IDN domain is refused by the directory (5.1.1), not as a relay', async () => {
    const c = await greeted(h);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    const r = await c.cmd('RCPT TO:<nobody@xn--bcher-kva.test>');
    assert.equal(r.code, 550);
    assert.match(r.line, /^550 5\.1\.1 /);
    c.quit();
  });
});
