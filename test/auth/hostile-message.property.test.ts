/**
 * Whatever a client sends as a message, the SenderAuth port answers with results and never throws:
 * a throw at the end of DATA would turn a hostile message into a dropped session instead of a verdict.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { senderAuthOn, signingKey } from '../support/sender-auth.js';

const WORDS = ['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy'];

describe('SenderAuth on hostile messages', () => {
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer({ records: { 'sel._domainkey.example.org': { TXT: [signingKey().record] }, '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject'] } } });
  });
  after(async () => dns.close());

  const fieldName = fc.constantFrom('From', 'DKIM-Signature', 'ARC-Seal', 'ARC-Message-Signature', 'ARC-Authentication-Results', 'Authentication-Results', 'Subject', 'Received');
  const value = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.constantFrom('v=1; a=rsa-sha256; d=example.org; s=sel; h=from; bh=AAAA; b=BBBB', 'i=1; a=rsa-sha256; cv=none; d=example.org; s=sel; b=x', '<a@example.org>, <b@example.net>', '<@>', '"', 'v=1; d=; s=; b=; bh=; h='),
  );
  const header = fc.array(fc.tuple(fieldName, value, fc.constantFrom('\r\n', '\n', '\r\n\t')), { maxLength: 8 }).map((fields) => fields.map(([n, v, eol]) => `${n}:${v}${eol}`).join(''));
  const message = fc.tuple(header, fc.constantFrom('\r\n', '\n', ''), fc.uint8Array({ maxLength: 300 })).map(([h, sep, body]) => Buffer.concat([Buffer.from(h, 'latin1'), Buffer.from(sep), Buffer.from(body)]));

  it('property: every message gets a result word for DKIM, ARC and DMARC, and nothing throws', async () => {
    const { auth } = senderAuthOn(dns);
    await fc.assert(
      fc.asyncProperty(message, fc.constantFrom('', 'a@example.org', 'not an address'), async (bytes, sender) => {
        const r = await auth.message({ message: Readable.from([bytes]), sender, ip: '192.0.2.1', helo: 'h.example', spf: undefined });
        assert.ok(r.dkim.length >= 1);
        for (const d of r.dkim) assert.ok(WORDS.includes(d.result), d.result);
        assert.ok(WORDS.includes(r.arc.result), r.arc.result);
        if (r.dmarc) assert.ok(WORDS.includes(r.dmarc.result), r.dmarc.result);
      }),
      { numRuns: 60 },
    );
  });

  it('property: any sender, HELO and client address gets an SPF result word, never a throw', async () => {
    const { auth } = senderAuthOn(dns);
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), fc.string({ maxLength: 30 }), fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 10 })), async (sender, helo, ip) => {
        assert.ok(WORDS.includes((await auth.spf({ sender, ip, helo })).result));
      }),
      { numRuns: 60 },
    );
  });
});
