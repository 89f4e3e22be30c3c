import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import { BackendSession, type BackendTarget, type ForwardedClient } from '../../src/edge/backend-relay.js';
import { BackendUnavailable } from '../../src/edge/backend-unavailable.js';
import { SmtpError } from '../../src/net/smtp-reply.js';
import { closedPort, startBackend, startBlackHole, type TestBackend } from '../support/backend-server.js';
import { startScriptedBackend } from '../support/scripted-backend.js';
import { relayed } from '../support/relayed.js';

const client: ForwardedClient = { address: '192.0.2.7', hostname: 'mx.client.example', helo: 'client.example', proto: 'ESMTP' };

function target(port: number, extra: Partial<BackendTarget> = {}): BackendTarget {
  return { host: '127.0.0.1', port, timeoutMs: 2000, starttls: false, tlsRejectUnauthorized: true, heloName: 'edge.test', ...extra };
}

function message(body = 'Hello.\r\n.leading dot\r\n'): Buffer {
  return Buffer.from(`From: a@example.org\r\nTo: b@example.com\r\nSubject: t\r\n\r\n${body}`);
}

describe('BackendSession against a real SMTP back end', () => {
  let backend: TestBackend;
  before(async () => {
    backend = await startBackend();
  });
  after(async () => {
    await backend.close();
  });

  it('relays MAIL, RCPT and DATA in lock-step and returns the back end replies', async () => {
    const s = await BackendSession.open(target(backend.port), client);
    const mail = await s.mailFrom('a@example.org', { body: '8BITMIME', size: 100 });
    assert.equal(mail.code, 250);
    assert.equal(mail.enhanced, '2.1.0');
    assert.deepEqual(backend.mailFroms.at(-1), 'a@example.org');
    const rcpt = await s.rcptTo('b@example.com');
    assert.equal(rcpt.code, 250);
    const done = await relayed(s, Readable.from([message()]));
    assert.equal(done.code, 250);
    assert.equal(done.enhanced, '2.6.0');
    assert.match(done.lines[0] ?? '', /^Ok: queued as Q\d+$/);
    await s.quit();
    const got = backend.messages.at(-1);
    assert.ok(got);
    assert.equal(got.from, 'a@example.org');
    assert.deepEqual(got.to, ['b@example.com']);
    assert.equal(got.data.toString(), message().toString(), 'dot-stuffing undone by the back end: bytes identical');
    assert.equal(got.xforward.ADDR, '192.0.2.7');
    assert.equal(got.xforward.HELO, 'client.example');
    assert.equal(got.xforward.NAME, 'mx.client.example');
    assert.equal(got.xforward.PROTO, 'ESMTP');
  });

  it('writes XFORWARD values as xtext, so `=` and `+` reach the back end as sent', async () => {
    const odd: ForwardedClient = { ...client, helo: '[odd=helo+name]' };
    const s = await BackendSession.open(target(backend.port), odd);
    await s.mailFrom('a@example.org');
    await s.rcptTo('b@example.com');
    assert.equal((await relayed(s, Readable.from([message()]))).code, 250);
    await s.quit();
    const got = backend.messages.at(-1);
    assert.equal(got?.xforward.HELO, '[odd=helo+name]');
  });

  it('writes an IDN address in ASCII (A-labels), never as 8-bit', async () => {
    const s = await BackendSession.open(target(backend.port), client);
    assert.equal((await s.mailFrom('a@b\u00fccher.example')).code, 250);
    assert.equal(backend.mailFroms.at(-1), 'a@b\u00fccher.example', 'smtp-server decodes the A-label it was sent');
    await assert.rejects(s.rcptTo('j\u00f6rg@example.com'), (e: unknown) => e instanceof SmtpError && e.reply.code === 553 && e.reply.enhanced === '5.6.7');
    await s.quit();
  });

  it('passes 4xx and 5xx replies through with their own codes', async () => {
    backend.behaviour = { rcpt: { 'full@example.com': { code: 452, text: 'Mailbox full' } }, dataEnd: { code: 554, text: 'Content rejected' } };
    try {
      const s = await BackendSession.open(target(backend.port), client);
      await s.mailFrom('a@example.org');
      const full = await s.rcptTo('full@example.com');
      assert.deepEqual([full.code, full.enhanced, full.lines], [452, '4.2.2', ['Mailbox full']]);
      assert.equal((await s.rcptTo('ok@example.com')).code, 250);
      const end = await relayed(s, Readable.from([message()]));
      assert.deepEqual([end.code, end.enhanced, end.lines], [554, '5.6.0', ['Content rejected']]);
      await s.quit();
      backend.behaviour = { mail: { code: 451, text: 'Try later' } };
      const s2 = await BackendSession.open(target(backend.port), client);
      const mail = await s2.mailFrom('a@example.org');
      assert.deepEqual([mail.code, mail.enhanced], [451, '4.3.0']);
      await s2.quit();
    } finally {
      backend.behaviour = {};
    }
  });

  it('abandons the transaction before the final dot when the message source fails', async () => {
    const before = backend.messages.length;
    const incomplete = backend.incomplete;
    const s = await BackendSession.open(target(backend.port), client);
    await s.mailFrom('a@example.org');
    await s.rcptTo('b@example.com');
    async function* vanishing(): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: x\r\n\r\nfirst part\r\n');
      throw new Error('client went away');
    }
    await assert.rejects(relayed(s, vanishing()), /client went away/);
    for (let i = 0; i < 100 && backend.incomplete === incomplete; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(backend.incomplete, incomplete + 1, 'back end saw the transaction end without its dot');
    assert.equal(backend.messages.length, before, 'nothing delivered');
  });

  it('a message source that fails while the back end is still taking a large piece fails the relay, and nothing else', async () => {
    const before = backend.messages.length;
    const s = await BackendSession.open(target(backend.port), client);
    await s.mailFrom('a@example.org');
    await s.rcptTo('b@example.com');
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // The first piece is far above the socket's high-water mark, so the relay waits for the back end
      // to drain it while the source's next read has already failed (a spooled message's file read).
      async function* failsBehindABigPiece(): AsyncGenerator<Buffer> {
        yield Buffer.from(`Subject: x\r\n\r\n${`${'a'.repeat(998)}\r\n`.repeat(8 * 1024)}`);
        throw new Error('spool read failed');
      }
      await assert.rejects(relayed(s, failsBehindABigPiece()), /spool read failed/);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    assert.deepEqual(unhandled, [], 'no rejection went unhandled');
    assert.equal(backend.messages.length, before, 'nothing delivered');
  });

  it('streams a large message with back-pressure (sizes and hashes match)', async () => {
    backend.behaviour = { discardData: true };
    try {
      const chunk = Buffer.alloc(79 * 830, 'x'.repeat(77) + '\r\n');
      const count = 160; // ~10 MiB, whole lines
      const hash = createHash('sha256');
      async function* big(): AsyncGenerator<Buffer> {
        yield Buffer.from('Subject: big\r\n\r\n');
        hash.update('Subject: big\r\n\r\n');
        for (let i = 0; i < count; i++) {
          hash.update(chunk);
          yield chunk;
        }
      }
      const s = await BackendSession.open(target(backend.port), client);
      await s.mailFrom('a@example.org');
      await s.rcptTo('b@example.com');
      const r = await relayed(s, big());
      await s.quit();
      assert.equal(r.code, 250);
      const got = backend.messages.at(-1);
      assert.equal(got?.sha256, hash.digest('hex'));
    } finally {
      backend.behaviour = {};
    }
  });

  it('fails with 451 4.7.0 when the back end dies mid-DATA', async () => {
    backend.behaviour = { dieAfterBytes: 100_000, discardData: true };
    const before = backend.messages.length;
    try {
      const s = await BackendSession.open(target(backend.port), client);
      await s.mailFrom('a@example.org');
      await s.rcptTo('b@example.com');
      async function* big(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 200; i++) yield Buffer.alloc(16 * 1024, 'y');
      }
      const err = await relayed(s, big()).then(
        () => assert.fail('should have failed'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BackendUnavailable, String(err));
      assert.equal(err.reply.code, 451);
      assert.equal(err.reply.enhanced, '4.7.0');
      assert.equal(backend.messages.length, before);
    } finally {
      backend.behaviour = {};
    }
  });
});

describe('BackendSession reads', () => {
  it("keeps each connection's replies its own while many arrive together, a byte at a time", async () => {
    // Every connection is answered a byte per write, the connections' bytes interleaved on the wire:
    // reads of many connections alternate, and each reply must still reach its own session whole.
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      const n = sockets.push(socket);
      const queue: number[] = [];
      const drip = (): void => {
        const byte = queue.shift();
        if (byte === undefined || socket.destroyed) return;
        socket.write(Buffer.of(byte));
        setImmediate(drip);
      };
      const say = (text: string): void => {
        if (queue.length === 0) setImmediate(drip);
        queue.push(...Buffer.from(text));
      };
      say(`220 backend-${n} ESMTP\r\n`);
      let pending = '';
      socket.on('data', (chunk: Buffer) => {
        pending += chunk.toString('latin1');
        for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === 'EHLO') say(`250-backend-${n}\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR PROTO HELO\r\n`);
          else if (verb === 'RCPT') say(`550 5.1.1 ${line.slice(9, -1)} unknown to backend-${n}\r\n`);
          else if (verb === 'QUIT') say('221 2.0.0 Bye\r\n');
          else say('250 2.0.0 Ok\r\n');
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const sessions = await Promise.all(Array.from({ length: 12 }, () => BackendSession.open(target(port), client)));
      assert.equal(new Set(sockets).size, 12);
      const replies = await Promise.all(
        sessions.map(async (s, i) => {
          await s.mailFrom(`a${i}@example.org`);
          return (await s.rcptTo(`user${i}@example.com`)).lines[0];
        }),
      );
      for (const [i, text] of replies.entries()) assert.match(text ?? '', new RegExp(`^user${i}@example\\.com unknown to backend-\\d+$`));
      assert.equal(new Set(replies.map((t) => t?.split('backend-')[1])).size, 12, 'each session read its own connection');
      await Promise.all(sessions.map((s) => s.quit()));
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});

describe('BackendSession failures', () => {
  it('a refused connection is 451 4.7.0 at once', async () => {
    const port = await closedPort();
    const t0 = Date.now();
    // A time-out far above the bound below: only a refusal noticed at once can pass.
    const err = await BackendSession.open(target(port, { timeoutMs: 10_000 }), client).then(
      () => assert.fail('should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof BackendUnavailable);
    assert.equal(err.responseCode, 451);
    const took = Date.now() - t0;
    assert.ok(took < 3000, `took ${took} ms, not at once`);
  });

  it('a black hole is 451 4.7.0 within the time-out, not a hang', async () => {
    const hole = await startBlackHole();
    try {
      const t0 = Date.now();
      const err = await BackendSession.open(target(hole.port, { timeoutMs: 400 }), client).then(
        () => assert.fail('should fail'),
        (e: unknown) => e,
      );
      const took = Date.now() - t0;
      assert.ok(err instanceof BackendUnavailable);
      assert.match(err.message, /greeting/);
      // Not before the time-out; after it, bounded (a hang would be many times this) with room for a loaded machine.
      assert.ok(took >= 400 - 50 && took < 400 + 1500, `took ${took} ms`);
    } finally {
      await hole.close();
    }
  });

  it('a reply injected after the 220 to STARTTLS, before the handshake, ends the session at once', async () => {
    const scripted = await startScriptedBackend({
      ehlo: '250-scripted.test\r\n250 STARTTLS\r\n',
      starttls: '220 2.0.0 Ready to start TLS\r\n250 2.0.0 injected in plain text\r\n',
    });
    try {
      const t0 = Date.now();
      const err = await BackendSession.open(target(scripted.port, { starttls: true, tlsRejectUnauthorized: false, timeoutMs: 10_000 }), client).then(
        () => assert.fail('should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof BackendUnavailable, String(err));
      assert.match(err.message, /reply with no command outstanding/, 'the reason is the protocol error');
      assert.ok(Date.now() - t0 < 3000, 'not left to the time-out');
    } finally {
      await scripted.close();
    }
  });

  it('upgrades with STARTTLS when configured, and refuses a back end without it', async () => {
    const tlsBackend = await startBackend({ starttls: true });
    const plain = await startBackend();
    try {
      const s = await BackendSession.open(target(tlsBackend.port, { starttls: true, tlsRejectUnauthorized: false }), client);
      await s.mailFrom('a@example.org');
      await s.rcptTo('b@example.com');
      assert.equal((await relayed(s, Readable.from([message()]))).code, 250);
      await s.quit();
      assert.equal(tlsBackend.messages.at(-1)?.secure, true);
      assert.equal(tlsBackend.messages.at(-1)?.xforward.ADDR, '192.0.2.7');
      await assert.rejects(BackendSession.open(target(plain.port, { starttls: true }), client), /STARTTLS is configured but not offered/);
    } finally {
      await tlsBackend.close();
      await plain.close();
    }
  });

  it('passes the client on with XCLIENT when that is what the back end offers', async () => {
    const b = await startBackend({ xclient: true });
    try {
      const s = await BackendSession.open(target(b.port), { address: '2001:db8::7', helo: 'v6.example', proto: 'SMTP' });
      await s.mailFrom('a@example.org');
      await s.rcptTo('b@example.com');
      assert.equal((await relayed(s, Readable.from([message()]))).code, 250);
      await s.quit();
      assert.equal(b.messages.at(-1)?.xclient.ADDR, '2001:db8::7');
      assert.equal(b.messages.at(-1)?.helo, 'edge.test', 'EHLO said again after XCLIENT');
    } finally {
      await b.close();
    }
  });
});
