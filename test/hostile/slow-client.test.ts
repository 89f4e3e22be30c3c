/**
 * Slow clients: the edge's time limits are deadlines that no trickled byte extends. A client that
 * sends one byte every 100 ms reset the old inactivity timer forever and held its connection slot
 * for as long as it liked; now a command line, the DATA phase and the whole session each have a
 * deadline, and each ends with `421 4.4.2` and a close. Short configured deadlines, bounded trickles.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { RawSmtpClient, sendMail } from '../support/smtp-client.js';
import { pause } from '../interop/peers.js';

const TRICKLE_MS = 100;

/** Writes `text` one byte every TRICKLE_MS until it is all sent or the server closed; resolves with the bytes sent. */
async function trickle(c: RawSmtpClient, text: string): Promise<number> {
  let sent = 0;
  for (const ch of text) {
    if (c.socket.destroyed || c.socket.readableEnded) break;
    c.write(ch);
    sent += 1;
    await pause(TRICKLE_MS);
  }
  return sent;
}

async function greeted(port: number): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(port);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

describe('hostile: slow clients', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness((r) => {
      r.listeners = [
        { name: 'command', listen: '127.0.0.1:0', limits: { idleTimeoutMs: 500 } },
        { name: 'data', listen: '127.0.0.1:0', limits: { dataTimeoutMs: 500, idleTimeoutMs: 10_000 } },
        { name: 'session', listen: '127.0.0.1:0', limits: { maxSessionMs: 1000, idleTimeoutMs: 10_000 } },
        { name: 'harvest', listen: '127.0.0.1:0', limits: { idleTimeoutMs: 300 } },
      ];
      r.recipientFilter = { rejectUnknown: true };
      r.directory = { addresses: ['bob@example.com'] };
      r.harvest = { delayAfter: 0, delayMs: 700, disconnectAfter: 5 };
    });
  });
  after(async () => h.close());

  it('a command line trickled a byte at a time is cut off at the command deadline: 421 4.4.2, close', async () => {
    const c = await greeted(h.port('command'));
    const t0 = Date.now();
    const sent = await trickle(c, `MAIL FROM:<${'a'.repeat(40)}@example.org>\r\n`);
    assert.match(c.unread, /^421 4\.4\.2 /);
    assert.equal(await c.closedByServer(1000), true);
    const took = Date.now() - t0;
    assert.ok(took < 1500 && sent < 15, `cut off after ${took} ms and ${sent} bytes`);
  });

  it('the command deadline runs from the reply, not from the last byte: an idle client is cut off too', async () => {
    const c = await greeted(h.port('command'));
    assert.match((await c.read(2000)).line, /^421 4\.4\.2 /);
    assert.equal(await c.closedByServer(), true);
  });

  it('the command deadline runs again from each reply: commands 250 ms apart outlast it, and after a message an idle client is cut off', async () => {
    const c = await greeted(h.port('command'));
    for (let i = 0; i < 4; i++) {
      await pause(250);
      assert.equal((await c.cmd('NOOP')).code, 250, `NOOP ${i + 1}, ${(i + 1) * 250} ms after the greeting`);
    }
    const r = await sendMail(c, 'a@example.org', ['bob@example.com'], 'Subject: in time\r\n\r\nbody\r\n');
    assert.match(r.end?.line ?? '', /^250 /);
    const t0 = Date.now();
    assert.match((await c.read(3000)).line, /^421 4\.4\.2 /);
    assert.ok(Date.now() - t0 >= 400, `cut off ${Date.now() - t0} ms after the message's reply`);
    assert.equal(await c.closedByServer(), true);
  });

  it('a client waiting on the edge (a delayed RCPT reply) is not cut off by the command deadline', async () => {
    const c = await greeted(h.port('harvest'));
    assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
    const t0 = Date.now();
    assert.match((await c.cmd('RCPT TO:<nobody@example.com>', 3000)).line, /^550 5\.1\.1 /);
    assert.ok(Date.now() - t0 >= 600, 'the reply was delayed past the command deadline');
    assert.equal((await c.cmd('NOOP')).code, 250);
  });

  it('a message trickled a byte at a time is cut off at the DATA deadline; nothing reaches the back end', async () => {
    const c = await greeted(h.port('data'));
    const before = h.backend.messages.length;
    assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const sent = await trickle(c, `Subject: slow\r\n\r\n${'x'.repeat(40)}\r\n.\r\n`);
    assert.match(c.unread, /^421 4\.4\.2 /);
    assert.ok(sent < 15, `cut off after ${sent} bytes`);
    assert.equal(await c.closedByServer(), true);
    assert.equal(h.backend.messages.length, before);
  });

  it('the DATA deadline runs again for each message: messages 300 ms apart outlast it, and one that stalls is cut off 500 ms after its 354', async () => {
    const c = await greeted(h.port('data'));
    const before = h.backend.messages.length;
    for (let i = 0; i < 3; i++) {
      const r = await sendMail(c, 'a@example.org', ['bob@example.com'], `Subject: in time ${i}\r\n\r\nbody\r\n`);
      assert.match(r.end?.line ?? '', /^250 /, `message ${i + 1}`);
      await pause(300);
    }
    assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const t0 = Date.now();
    c.write('Subject: stalls\r\n\r\n');
    assert.match((await c.read(3000)).line, /^421 4\.4\.2 /);
    const took = Date.now() - t0;
    assert.ok(took >= 400 && took < 1500, `cut off ${took} ms after the 354`);
    assert.equal(await c.closedByServer(), true);
    assert.equal(h.backend.messages.length, before + 3);
  });

  it('complete commands, one after another, are cut off at the session cap: 421 4.4.2, close', async () => {
    const c = await greeted(h.port('session'));
    const t0 = Date.now();
    let reply = '';
    for (let i = 0; i < 30 && !/^421/.test(reply); i++) {
      reply = (await c.cmd('NOOP')).line;
      await pause(TRICKLE_MS);
    }
    assert.match(reply, /^421 4\.4\.2 Session time limit/);
    assert.equal(await c.closedByServer(), true);
    const took = Date.now() - t0;
    assert.ok(took >= 800 && took < 2000, `cut off after ${took} ms`);
  });

  it('the session cap falling while the back end takes the message: the client gets its 250 first, then 421', async () => {
    const c = await greeted(h.port('session'));
    h.backend.behaviour = { dataEndDelayMs: 1200 };
    try {
      const r = await sendMail(c, 'a@example.org', ['bob@example.com'], 'Subject: in time\r\n\r\nbody\r\n');
      assert.match(r.end?.line ?? '', /^250 2\.6\.0 /);
      assert.match((await c.read()).line, /^421 4\.4\.2 Session time limit/);
      assert.equal(await c.closedByServer(), true);
    } finally {
      h.backend.behaviour = {};
    }
  });
});
