/** The listener's limits and smtp-server's own protocol replies, each with the contract's code. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { RawSmtpClient, sendMail, edgeRefusal } from '../support/smtp-client.js';

async function greeted(h: Harness) {
  const c = await h.connect();
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

describe('limits', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness((r) => {
      r.listeners = [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          limits: { maxMessageSize: 2000, maxRecipients: 2, maxMessagesPerConnection: 2, maxSessionSize: 3000, idleTimeoutMs: 600 },
        },
        { name: 'conn', listen: '127.0.0.1:0', limits: { maxConnectionsPerClient: 3 } },
        { name: 'reconnect', listen: '127.0.0.1:0', limits: { maxConnectionsPerClient: 3 } },
        { name: 'slowdata', listen: '127.0.0.1:0', limits: { dataTimeoutMs: 400 } },
        { name: 'permessage', listen: '127.0.0.1:0', limits: { maxMessageSize: 2000 } },
      ];
      r.recipientFilter = { rejectUnknown: true };
      r.directory = { addresses: ['bob@example.com', 'carol@example.com', 'dave@example.com'] };
      r.harvest = { delayAfter: 1, delayMs: 150, disconnectAfter: 2 };
    });
  });
  after(async () => h.close());

  it('SIZE= over the limit: 552 5.3.4 at MAIL FROM, and EHLO advertises the limit', async () => {
    const c = await h.connect();
    await c.read();
    const ehlo = await c.cmd('EHLO client.example');
    assert.ok(ehlo.lines.includes('SIZE 2000'));
    assert.match((await c.cmd('MAIL FROM:<a@example.org> SIZE=5000')).line, /^552 5\.3\.4 /);
  });

  it('a message over the limit on the stream: 552 5.3.4 after the dot, nothing delivered', async () => {
    const c = await greeted(h);
    const before = h.backend.messages.length;
    const r = await sendMail(c, 'a@example.org', ['bob@example.com'], `Subject: big\r\n\r\n${'z'.repeat(2500)}\r\n`);
    assert.match(r.end?.line ?? '', /^552 5\.3\.4 /);
    assert.equal(h.backend.messages.length, before);
    assert.equal((await c.cmd('NOOP')).code, 250, 'the rest was read as data, not as commands');
  });

  it('each message on a connection is judged on its own: after one over the limit or refused mid-stream, the limit holds and a small one is delivered whole', async () => {
    const c = await RawSmtpClient.connect(h.port('permessage'));
    await c.read();
    await c.cmd('EHLO client.example');
    const big = `Subject: big\r\n\r\n${'z'.repeat(2500)}\r\n`;
    const small = 'Subject: small\r\n\r\n.dot line\r\nlast\r\n';
    const before = h.backend.messages.length;
    assert.match((await sendMail(c, 'a@example.org', ['bob@example.com'], big)).end?.line ?? '', /^552 5\.3\.4 /);
    assert.equal((await sendMail(c, 'a@example.org', ['bob@example.com'], small)).end?.code, 250);
    // Each message ends with its limits no longer enforced (what follows its reply is only drained): the next one is enforced again.
    assert.match((await sendMail(c, 'a@example.org', ['bob@example.com'], ` folded\r\n${small}`)).end?.line ?? '', /^554 5\.6\.0 /);
    assert.match((await sendMail(c, 'a@example.org', ['bob@example.com'], big)).end?.line ?? '', /^552 5\.3\.4 /);
    assert.equal((await sendMail(c, 'a@example.org', ['bob@example.com'], small)).end?.code, 250);
    const delivered = h.backend.messages.slice(before);
    assert.equal(delivered.length, 2);
    for (const m of delivered) assert.ok(m.data.toString('latin1').endsWith(small), 'the message as sent, its dot line un-stuffed');
    assert.equal((await c.cmd('QUIT')).code, 221);
  });

  it('too many recipients: 452 4.5.3', async () => {
    const c = await greeted(h);
    await c.cmd('MAIL FROM:<a@example.org>');
    h.backend.behaviour = {};
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<carol@example.com>')).code, 250);
    assert.match((await c.cmd('RCPT TO:<dave@example.com>')).line, edgeRefusal('452 4.5.3 Error: too many recipients'));
  });

  it('too many messages on one connection: 421 4.7.0, then close', async () => {
    const c = await greeted(h);
    for (let i = 0; i < 2; i++) assert.equal((await sendMail(c, 'a@example.org', ['bob@example.com'], 'Subject: s\r\n\r\nx\r\n')).end?.code, 250);
    assert.match((await c.cmd('MAIL FROM:<a@example.org>')).line, /^421 4\.7\.0 /);
    assert.equal(await c.closedByServer(), true);
  });

  it('session size: the message that crosses it gets 421 4.7.0, then close', async () => {
    const c = await greeted(h);
    const body = `Subject: s\r\n\r\n${'q'.repeat(1500)}\r\n`;
    assert.equal((await sendMail(c, 'a@example.org', ['bob@example.com'], body)).end?.code, 250);
    const second = await sendMail(c, 'a@example.org', ['bob@example.com'], body);
    assert.match(second.end?.line ?? '', /^421 4\.7\.0 /);
    assert.equal(await c.closedByServer(), true);
  });

  it('idle time-out: 421 4.4.2, then close', async () => {
    const c = await greeted(h);
    const r = await c.read(3000);
    assert.match(r.line, /^421 4\.4\.2 /);
    assert.equal(await c.closedByServer(), true);
  });

  it('data time-out: 421 4.4.2 while the client dawdles in DATA; nothing delivered', async () => {
    const c = await RawSmtpClient.connect(h.port('slowdata'));
    await c.read();
    await c.cmd('EHLO client.example');
    const before = h.backend.messages.length;
    assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: slow\r\n\r\npart one\r\n');
    const r = await c.read(3000);
    assert.match(r.line, /^421 4\.4\.2 /);
    assert.equal(await c.closedByServer(), true);
    assert.equal(h.backend.messages.length, before);
  });

  it('harvest protection: replies slowed, then 421 4.7.0 and close', async () => {
    const c = await greeted(h);
    await c.cmd('MAIL FROM:<a@example.org>');
    assert.match((await c.cmd('RCPT TO:<x1@example.com>')).line, /^550 5\.1\.1 /);
    const t0 = Date.now();
    assert.match((await c.cmd('RCPT TO:<x2@example.com>')).line, /^550 5\.1\.1 /);
    assert.ok(Date.now() - t0 >= 140, 'second invalid recipient answered late');
    assert.match((await c.cmd('RCPT TO:<x3@example.com>')).line, /^421 4\.7\.0 /);
    assert.equal(await c.closedByServer(), true);
  });

  it('connections per client address: 421 4.7.0, then close', async () => {
    const open: RawSmtpClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await h.connect('conn');
        assert.equal((await c.read()).code, 220);
        open.push(c);
      }
      const fourth = await h.connect('conn');
      assert.match((await fourth.read()).line, /^421 4\.7\.0 /);
      assert.equal(await fourth.closedByServer(), true);
    } finally {
      for (const c of open) c.quit();
    }
  });

  it('a client that has read 221 has its slot back at once, before it closes its side', async () => {
    const open: RawSmtpClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await RawSmtpClient.connect(h.port('reconnect'), '127.0.0.1', { halfOpen: true });
        assert.equal((await c.read()).code, 220);
        open.push(c);
      }
      // Like smtp-source -s 20: the session is over at 221, and the next one starts before the old socket is closed.
      assert.equal((await open[0]!.cmd('QUIT')).code, 221);
      assert.equal(await open[0]!.closedByServer(), true);
      const next = await RawSmtpClient.connect(h.port('reconnect'));
      open.push(next);
      assert.equal((await next.read()).code, 220);
      const over = await RawSmtpClient.connect(h.port('reconnect'));
      assert.match((await over.read()).line, /^421 4\.7\.0 /, 'the limit still holds for sessions in progress');
    } finally {
      for (const c of open) c.quit();
    }
  });
});

describe("smtp-server's own replies carry the contract's codes", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness((r) => {
      r.listeners = [{ name: 'main', listen: '127.0.0.1:0', limits: { maxConnections: 1, maxConnectionsPerClient: 5 } }];
    });
  });
  after(async () => h.close());

  it('order, syntax, unknown commands, and the per-listener limit', async () => {
    const c = await h.connect();
    await c.read();
    assert.match((await c.cmd('MAIL FROM:<a@example.org>')).line, edgeRefusal('503 5.5.1 Error: send HELO/EHLO first'));
    assert.match((await c.cmd('EHLO')).line, /^501 5\.5\.4 /);
    await c.cmd('EHLO client.example');
    assert.match((await c.cmd('RCPT TO:<bob@example.com>')).line, /^503 5\.5\.1 /);
    assert.match((await c.cmd('MAIL FROM:bad')).line, /^501 5\.5\.4 /);
    assert.match((await c.cmd('FROB')).line, /^500 5\.5\.2 /);
    assert.match((await c.cmd('AUTH PLAIN AAAA')).line, /^500 5\.5\.2 /, 'no AUTH in this issue');
    assert.match((await c.cmd('STARTTLS')).line, /^500 5\.5\.2 /, 'no STARTTLS without a certificate');
    assert.match((await c.cmd('NOOP')).line, /^250 2\.0\.0 /);
    assert.match((await c.cmd('RSET')).line, /^250 2\.0\.0 /);
    const second = await h.connect();
    assert.match((await second.read()).line, /^421 4\.3\.2 /);
    assert.equal(await second.closedByServer(), true);
    assert.equal((await c.cmd('QUIT')).line, '221 2.0.0 Bye');
  });
});
