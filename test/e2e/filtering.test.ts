/**
 * Every scenario of the filtering order as a real SMTP session over loopback, against a real back
 * end: the codes at each stage, drops seen as closed connections, and what reached the back end.
 * Client addresses other than 127.0.0.1 are presented through the PROXY protocol from 127.0.0.1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { RawSmtpClient, sendMail, edgeRefusal } from '../support/smtp-client.js';

const MSG = 'From: <alice@example.org>\r\nSubject: t\r\n\r\nbody\r\n';

/** Connects to a PROXY-protocol listener as `client`, reads the greeting, says EHLO. */
async function as(h: Harness, client: string, listener = 'lb'): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(h.port(listener));
  c.write(`PROXY TCP4 ${client} 127.0.0.1 40000 25\r\n`);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

async function greeted(h: Harness, listener = 'main'): Promise<RawSmtpClient> {
  const c = await h.connect(listener);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

describe('steps 2 and 6: IP restrictions and the deny list', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness((r) => {
      r.listeners = [
        { name: 'main', listen: '127.0.0.1:0' },
        { name: 'restricted', listen: '127.0.0.1:0', ipRestrictions: { default: 'deny', except: ['192.0.2.0/24'] } },
        { name: 'unfiltered', listen: '127.0.0.1:0', filters: { connection: false } },
      ];
      r.connectionFilter = { deny: ['127.0.0.1'] };
    });
  });
  after(async () => h.close());

  it('a client refused by IP restrictions gets 554 5.7.1 as its greeting and EOF; nothing else is read', async () => {
    const c = await h.connect('restricted');
    const r = await c.read();
    assert.match(r.line, edgeRefusal('554 5.7.1 Access denied'));
    c.send('EHLO client.example');
    assert.equal(await c.closedByServer(), true);
    assert.equal(c.unread, '', 'the EHLO was never answered');
    assert.equal(h.backend.connections, 0);
  });

  it('a client on the deny list gets 550 5.7.1 at MAIL FROM, then EOF; the back end sees nothing', async () => {
    const c = await greeted(h);
    const r = await c.cmd('MAIL FROM:<alice@example.org>');
    assert.equal(r.code, 550);
    assert.match(r.line, /^550 5\.7\.1 /);
    assert.equal(await c.closedByServer(), true);
    assert.deepEqual(h.backend.mailFroms, []);
  });

  it('with connection filtering off on a listener, the deny list is skipped and mail is relayed', async () => {
    const c = await greeted(h, 'unfiltered');
    const r = await sendMail(c, 'alice@example.org', ['bob@example.com'], MSG);
    assert.equal(r.end?.code, 250);
    assert.deepEqual(h.backend.messages.map((m) => m.to), [['bob@example.com']]);
  });
});

describe('steps 5 and 9-12: accept list, DNSBL, exceptions, recipient filter, directory, relay protection', () => {
  let h: Harness;
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer({
      records: {
        '2.0.0.127.bl.test': { A: ['127.0.0.2'] },
        '99.2.0.192.bl.test': { A: ['127.0.0.2'], TXT: ['listed for testing'] },
        '50.2.0.192.bl.test': { A: ['127.0.0.2'] },
      },
    });
    h = await startHarness((r) => {
      r.listeners = [{ name: 'lb', listen: '127.0.0.1:0', proxyProtocol: { from: ['127.0.0.1'] } }];
      r.dns = { servers: [dns.address], timeoutMs: 500, healthCheckIntervalSec: 0 };
      r.connectionFilter = {
        accept: ['192.0.2.50'],
        exceptions: ['postmaster@example.com'],
        rules: [{ name: 'TestBL', zone: 'bl.test', message: '%0 has been blocked by %1: %3' }],
      };
      r.senderFilter = { blocked: ['spam@bad.example'] };
      r.recipientFilter = { blocked: ['blocked@example.com'], rejectUnknown: true };
      r.directory = { addresses: ['bob@example.com', 'postmaster@example.com', 'blocked@example.com'] };
    });
  });
  after(async () => {
    await h.close();
    await dns.close();
  });

  it('a DNSBL-listed client is refused at RCPT with the rule message; the exception recipient still gets through', async () => {
    const c = await as(h, '192.0.2.99');
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    const bob = await c.cmd('RCPT TO:<bob@example.com>');
    assert.match(bob.line, edgeRefusal('550 5.7.1 192.0.2.99 has been blocked by TestBL: listed for testing'));
    assert.equal((await c.cmd('RCPT TO:<postmaster@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`${MSG}.\r\n`);
    assert.equal((await c.read()).code, 250);
    const got = h.backend.messages.at(-1);
    assert.deepEqual(got?.to, ['postmaster@example.com']);
    assert.equal(got?.xforward.ADDR, '192.0.2.99', 'the client address the balancer reported');
    assert.ok(!h.backend.rcptTos.includes('bob@example.com'), 'a refused recipient is never offered to the back end');
  });

  it('an accept-listed client bypasses DNSBL, but the sender and recipient filters still apply', async () => {
    const c = await as(h, '192.0.2.50');
    assert.match((await c.cmd('MAIL FROM:<spam@bad.example>')).line, edgeRefusal('550 5.1.0 Sender Denied'));
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.match((await c.cmd('RCPT TO:<blocked@example.com>')).line, /^550 5\.1\.1 /);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`${MSG}.\r\n`);
    assert.equal((await c.read()).code, 250);
    assert.deepEqual(h.backend.messages.at(-1)?.to, ['bob@example.com']);
  });

  it('blocked and unknown recipients get the same 550 5.1.1; foreign domains and address tricks 550 5.7.1', async () => {
    const c = await as(h, '192.0.2.10');
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    const blocked = await c.cmd('RCPT TO:<blocked@example.com>');
    const unknown = await c.cmd('RCPT TO:<nobody@example.com>');
    assert.match(blocked.line, /^550 5\.1\.1 /);
    assert.match(unknown.line, /^550 5\.1\.1 /);
    for (const trick of ['user@other.org', 'user%other.org@example.com', 'other.org!user@example.com', '@example.com:user@other.org']) {
      const r = await c.cmd(`RCPT TO:<${trick}>`);
      assert.match(r.line, edgeRefusal('550 5.7.1 Unable to relay'), trick);
    }
    // smtp-server refuses a second @ outside quotes handling as a syntax error before any filter runs.
    assert.match((await c.cmd('RCPT TO:<"user@other.org"@example.com>')).line, edgeRefusal('501 5.5.4 Error: Bad recipient address syntax'));
    assert.match((await c.cmd('DATA')).line, edgeRefusal('503 5.5.1 Error: need RCPT command'));
    c.send('QUIT');
    const offered = h.backend.rcptTos.filter((r) => /nobody|blocked|other\.org/.test(r));
    assert.deepEqual(offered, [], 'nothing refused was offered to the back end');
  });

  it('a malformed PROXY header from the balancer is refused and the connection closed', async () => {
    const c = await RawSmtpClient.connect(h.port('lb'));
    c.write('PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n');
    const r = await c.read();
    assert.ok(r.code >= 400, r.line);
    assert.match(r.line, /^\d{3} \d\.\d+\.\d+ /);
    assert.equal(await c.closedByServer(), true);
  });

  it('a connection from the balancer without any PROXY header is refused', async () => {
    const c = await RawSmtpClient.connect(h.port('lb'));
    c.write('EHLO sneaky.example\r\n');
    const r = await c.read();
    assert.ok(r.code >= 400, r.line);
    assert.equal(await c.closedByServer(), true);
  });
});

describe('a PROXY header from an address that is not a configured balancer', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness((r) => {
      r.listeners = [
        { name: 'main', listen: '127.0.0.1:0' },
        { name: 'lb', listen: '127.0.0.1:0', proxyProtocol: { from: ['192.0.2.1'] } },
      ];
    });
  });
  after(async () => h.close());

  for (const listener of ['main', 'lb']) {
    it(`is refused on listener ${listener}, with no session started`, async () => {
      const c = await RawSmtpClient.connect(h.port(listener));
      c.write('PROXY TCP4 192.0.2.99 127.0.0.1 40000 25\r\n');
      let r = await c.read();
      if (r.code === 220) r = await c.read();
      assert.equal(r.code, 421);
      assert.match(r.line, /^421 4\.7\.0 /);
      assert.equal(await c.closedByServer(), true);
    });
  }
});

for (const action of ['reject', 'drop', 'archive'] as const) {
  describe(`steps 7 and 15 with sender action ${action}`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness((r) => {
        r.listeners = [
          { name: 'main', listen: '127.0.0.1:0' },
          { name: 'nosender', listen: '127.0.0.1:0', filters: { sender: false } },
        ];
        r.senderFilter = { blocked: ['spam@bad.example', '*@evil.example'], action };
      });
    });
    after(async () => h.close());

    it('envelope sender', async () => {
      const c = await greeted(h);
      const before = h.backend.mailFroms.length;
      const r = await sendMail(c, 'spam@bad.example', ['bob@example.com'], MSG);
      if (action === 'archive') {
        assert.equal(r.mail.code, 250);
        assert.equal(r.rcpts[0]?.code, 250);
        assert.match(r.end?.line ?? '', /^250 2\.6\.0 /);
        const [entry] = h.badmailEntries();
        assert.ok(entry);
        assert.equal(entry.message, MSG, 'the message exactly as received');
        assert.equal(entry.envelope.sender, 'spam@bad.example');
        assert.deepEqual(entry.envelope.recipients, ['bob@example.com']);
        assert.equal(entry.envelope.step, 7);
        assert.equal(entry.envelope.listener, 'main');
        assert.equal(entry.envelope.clientIp, '127.0.0.1');
        assert.equal(entry.envelope.helo, 'client.example');
      } else {
        assert.match(r.mail.line, edgeRefusal('550 5.1.0 Sender Denied'));
        if (action === 'drop') {
          assert.equal(await c.closedByServer(), true);
        } else {
          assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250, 'the session goes on after a reject');
        }
        assert.deepEqual(h.badmailEntries(), []);
      }
      assert.equal(h.backend.mailFroms.slice(before).includes('spam@bad.example'), false);
      assert.equal(h.backend.messages.length, 0);
    });

    it('header From:', async () => {
      const c = await greeted(h);
      const already = h.badmailEntries().length;
      const msg = 'From: "Evil" <boss@evil.example>\r\nSubject: x\r\n\r\nbody\r\n';
      const r = await sendMail(c, 'alice@example.org', ['bob@example.com'], msg);
      assert.equal(r.mail.code, 250);
      if (action === 'archive') {
        assert.match(r.end?.line ?? '', /^250 2\.6\.0 /);
        const entry = h.badmailEntries()[already];
        assert.equal(entry?.message, msg);
        assert.equal(entry?.envelope.step, 15);
      } else {
        assert.match(r.end?.line ?? '', edgeRefusal('550 5.1.0 Sender Denied'));
        assert.equal(await c.closedByServer(action === 'drop' ? 5000 : 300), action === 'drop');
      }
      assert.equal(h.backend.messages.length, 0, 'nothing delivered');
    });

    it('with sender filtering off on a listener the same message is relayed', async () => {
      const c = await greeted(h, 'nosender');
      const r = await sendMail(c, 'spam@bad.example', ['bob@example.com'], 'From: boss@evil.example\r\n\r\nhi\r\n');
      assert.equal(r.end?.code, 250);
      assert.equal(h.backend.messages.length, 1);
    });
  });
}
