/**
 * DKIM (RFC 6376), DMARC (RFC 7489) and ARC (RFC 8617) through the SenderAuth port: messages signed
 * in the test with real keys whose records the test DNS server publishes.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { MessageAuth, SpfCheck } from '../../src/auth/sender-auth.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { arcSealed, senderAuthOn, signed, signingKey, type SigningKey } from '../support/sender-auth.js';

const MSG = 'From: Alice <alice@example.org>\r\nTo: <bob@example.test>\r\nSubject: hello\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nHello Bob.\r\n';
const NO_SPF: SpfCheck = { result: 'fail', domain: 'elsewhere.example', identity: 'mailfrom', info: 'spf=fail' };

describe('DKIM, DMARC and ARC over real DNS', () => {
  let dns: TestDnsServer;
  let key: SigningKey;
  let other: SigningKey;
  before(async () => {
    key = signingKey();
    other = signingKey();
    dns = await startDnsServer({
      records: {
        'sel._domainkey.example.org': { TXT: [key.record] },
        '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject; rua=mailto:d@example.org'] },
        'sel._domainkey.thirdparty.example': { TXT: [other.record] },
        '_dmarc.quarantined.example': { TXT: ['v=DMARC1; p=quarantine'] },
        'sel._domainkey.lists.example': { TXT: [other.record] },
      },
    });
  });
  after(async () => dns.close());

  const check = async (message: string, spf: SpfCheck | undefined = NO_SPF): Promise<MessageAuth> =>
    senderAuthOn(dns).auth.message({ message: Readable.from([Buffer.from(message)]), sender: 'bounce@elsewhere.example', ip: '192.0.2.1', helo: 'h.example', spf });

  it('a message signed by its From: domain passes DKIM and, aligned, DMARC, though SPF failed', async () => {
    const r = await check(await signed(MSG, 'example.org', key));
    assert.deepEqual(r.dkim.map((d) => [d.result, d.domain]), [['pass', 'example.org']]);
    assert.match(r.dkim[0]!.info, /^dkim=pass header\.i=@example\.org header\.s=sel/);
    assert.deepEqual([r.dmarc?.result, r.dmarc?.policy, r.dmarc?.domain], ['pass', 'reject', 'example.org']);
    assert.equal(r.arc.result, 'none');
  });

  it('a body changed after signing fails the body hash; DMARC then fails under p=reject', async () => {
    const r = await check((await signed(MSG, 'example.org', key)).replace('Hello Bob.', 'Pay Mallory.'));
    assert.notEqual(r.dkim[0]!.result, 'pass');
    assert.match(r.dkim[0]!.info, /body hash did not verify/);
    assert.deepEqual([r.dmarc?.result, r.dmarc?.policy], ['fail', 'reject']);
  });

  it('a signature by an unaligned domain passes DKIM but not DMARC; an aligned SPF pass alone passes DMARC', async () => {
    const third = await check(await signed(MSG, 'thirdparty.example', other));
    assert.deepEqual(third.dkim.map((d) => [d.result, d.domain]), [['pass', 'thirdparty.example']]);
    assert.equal(third.dmarc?.result, 'fail');
    const spfOnly = await check(MSG, { result: 'pass', domain: 'example.org', identity: 'mailfrom', info: 'spf=pass' });
    assert.deepEqual(spfOnly.dkim.map((d) => d.result), ['none']);
    assert.equal(spfOnly.dmarc?.result, 'pass');
  });

  it('a key that does not match the signature fails; p=quarantine and no record are reported as such', async () => {
    const forged = (await signed(MSG, 'example.org', other)).replace('From: Alice', 'From: Alice');
    const r = await check(forged);
    assert.notEqual(r.dkim[0]!.result, 'pass');
    const q = await check(MSG.replace('alice@example.org', 'alice@quarantined.example'));
    assert.deepEqual([q.dmarc?.result, q.dmarc?.policy], ['fail', 'quarantine']);
    const none = await check(MSG.replace('alice@example.org', 'alice@nodmarc.example'));
    assert.equal(none.dmarc?.result, 'none');
  });

  it('a message with two From: addresses gets no DMARC verdict (RFC 7489 6.6.1)', async () => {
    const r = await check(MSG.replace('From: Alice <alice@example.org>', 'From: <alice@example.org>, <eve@example.net>'));
    assert.equal(r.dmarc, undefined);
  });

  it('an ARC set added by a forwarder validates (arc=pass); a message changed after sealing does not', async () => {
    const original = await signed(MSG, 'example.org', key);
    const sealed = await arcSealed(original, 'lists.example', other, 'lists.example; dkim=pass header.d=example.org');
    const r = await check(sealed);
    assert.equal(r.arc.result, 'pass');
    assert.match(r.arc.info, /^arc=pass/);
    const broken = await check(sealed.replace('Hello Bob.', 'Hello Eve.'));
    assert.equal(broken.arc.result, 'fail');
  });

  it('a DKIM key lookup that fails temporarily is temperror, not fail', async () => {
    dns.setRecords({ 'sel._domainkey.example.org': { mode: 'servfail' }, '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject'] } });
    const r = await check(await signed(MSG, 'example.org', key));
    assert.equal(r.dkim[0]!.result, 'temperror');
  });
});
