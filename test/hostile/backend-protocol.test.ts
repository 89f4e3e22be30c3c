/**
 * A back end that breaks the SMTP reply protocol must never turn into a 250 for the client. A raw
 * client talks to the whole edge, in front of a scripted back end that misbehaves on cue; every test
 * checks what the client was told against what the back end actually took (a final dot answered 2xx).
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { startScriptedBackend, type ScriptedBackend } from '../support/scripted-backend.js';
import { sendMail, type RawSmtpClient, edgeRefusal } from '../support/smtp-client.js';

const MESSAGE = 'From: a@example.org\r\nTo: b@example.com\r\nSubject: t\r\n\r\nbody\r\n';
const TEMPFAIL = edgeRefusal('451 4.7.0 Temporary server error. Please try again later.');

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('hostile back end: reply accounting', () => {
  let backend: ScriptedBackend;
  let h: Harness;
  before(async () => {
    backend = await startScriptedBackend();
    h = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000 };
    });
  });
  after(async () => {
    await h.close();
    await backend.close();
  });
  beforeEach(() => {
    backend.script = {};
    backend.taken.length = 0;
  });

  async function client(): Promise<RawSmtpClient> {
    const c = await h.connect();
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    return c;
  }

  /** One whole transaction; the reply the client was left with at the end, and what the back end took. */
  async function transaction(): Promise<{ last: string; taken: number }> {
    const c = await client();
    try {
      const r = await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE);
      const last = r.end ?? r.data ?? r.rcpts.find((x) => x.code !== 250) ?? r.mail;
      return { last: last.line, taken: backend.taken.length };
    } finally {
      c.quit();
    }
  }

  it('a well-behaved scripted back end takes the message and the client gets its 250', async () => {
    const { last, taken } = await transaction();
    assert.equal(last, '250 2.0.0 Ok: queued');
    assert.equal(taken, 1);
  });

  /** The edge's portcullis_relay_total for one outcome. */
  async function relays(outcome: string): Promise<number> {
    const m = new RegExp(`^portcullis_relay_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(await h.metrics.render());
    return Number(m?.[1] ?? 0);
  }

  it('DATA answered 250 instead of 354: the client gets 451 4.7.0, not 250, and the relay counts as failed', async () => {
    backend.script = { data: '250 2.0.0 Ok\r\n' };
    const [failed, delivered] = [await relays('failed'), await relays('delivered')];
    const { last, taken } = await transaction();
    assert.match(last, TEMPFAIL);
    assert.equal(taken, 0);
    assert.equal(await relays('failed'), failed + 1);
    assert.equal(await relays('delivered'), delivered);
  });

  it('DATA answered with a 3xx other than 354: 451 4.7.0', async () => {
    backend.script = { data: '334 go on\r\n' };
    const { last } = await transaction();
    assert.match(last, TEMPFAIL);
  });

  it('DATA answered 554 or 452: the client gets that reply as it is', async () => {
    backend.script = { data: '554 5.7.1 No thanks\r\n' };
    assert.equal((await transaction()).last, '554 5.7.1 No thanks');
    backend.script = { data: '452 4.3.1 Full\r\n' };
    assert.equal((await transaction()).last, '452 4.3.1 Full');
  });

  it('an extra reply after RCPT does not shift the 250 of RCPT onto DATA: 451, nothing taken', async () => {
    // Today's bug: the stray 250 became the answer to DATA, so the client got 250 without any message sent.
    backend.script = { rcpt: '250 2.1.5 Ok\r\n250 2.0.0 stray\r\n' };
    const { last, taken } = await transaction();
    assert.match(last, TEMPFAIL);
    assert.equal(taken, 0);
  });

  it('an extra reply after EHLO (nothing outstanding) abandons the back end before MAIL', async () => {
    backend.script = { ehlo: '250-scripted.test\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR PROTO HELO\r\n250 2.0.0 stray\r\n' };
    const { last, taken } = await transaction();
    assert.match(last, TEMPFAIL);
    assert.equal(taken, 0);
  });

  it('a reply in the middle of DATA: the back end is dropped before the final dot, the client gets 451', async () => {
    // The early 250 must not be taken for the answer to the dot; the real answer would have been 554.
    backend.script = { duringData: '250 2.0.0 early\r\n', dot: '554 5.7.1 Rejected\r\n' };
    const c = await client();
    try {
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      const arrived = backend.dataArrives();
      c.write('From: a@example.org\r\nSubject: t\r\n\r\nfirst line\r\n');
      await arrived;
      // The edge drops the back end as soon as the stray reply arrives, while the client is still sending.
      const dropped = backend.connections.at(-1)?.closed;
      assert.ok(dropped);
      await within(dropped, 5000, 'the back end dropped mid-DATA');
      c.write('second line\r\n.\r\n');
      assert.match((await c.read()).line, TEMPFAIL);
      assert.ok(!backend.connections.at(-1)?.data.includes('second line'), 'the back end got no final dot');
      assert.equal((await c.cmd('RSET')).code, 250, 'the client session goes on');
    } finally {
      c.quit();
    }
  });

  it('a reply glued to the 354 (before any message byte was sent) is not the answer to the final dot', async () => {
    backend.script = { data: '354 go ahead\r\n250 2.0.0 Ok\r\n', dot: '554 5.7.1 Rejected\r\n' };
    const { last, taken } = await transaction();
    assert.match(last, TEMPFAIL);
    assert.equal(taken, 0);
  });

  it('a partial unsolicited line (no CRLF yet) with nothing outstanding is also a protocol error', async () => {
    backend.script = { rcpt: '250 2.1.5 Ok\r\n250 2.0.0 half' };
    const { last, taken } = await transaction();
    assert.match(last, TEMPFAIL);
    assert.equal(taken, 0);
  });

  it('RCPT TO on a pooled back-end session answered 421, or with the connection closed: 451 4.7.0, counted as failed, the next transaction on a fresh connection', async () => {
    const c = await client();
    try {
      assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
      for (const script of [{ rcpt: '421 4.3.2 Shutting down\r\n' }, { hangUpOnce: 'RCPT' }]) {
        backend.script = script;
        const [failed, connections] = [await relays('failed'), backend.connections.length];
        assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
        assert.match((await c.cmd('RCPT TO:<b@example.com>')).line, TEMPFAIL);
        assert.equal(await relays('failed'), failed + 1);
        backend.script = {};
        assert.equal((await c.cmd('RSET')).code, 250);
        const taken = backend.taken.length;
        assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
        assert.equal(backend.taken.length, taken + 1);
        assert.equal(backend.connections.length, connections + 1, 'a fresh back-end connection');
      }
    } finally {
      c.quit();
    }
  });

  it('DATA or the final dot on a pooled back-end session answered 421, or with the connection closed: 451 4.7.0, counted as failed, nothing taken, the next transaction on a fresh connection', async () => {
    const c = await client();
    try {
      assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
      for (const script of [{ data: '421 4.3.2 Shutting down\r\n' }, { dot: '421 4.3.2 Shutting down\r\n' }, { hangUpOnce: 'DATA' }]) {
        backend.script = script;
        const [failed, connections, taken] = [await relays('failed'), backend.connections.length, backend.taken.length];
        const r = await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE);
        assert.match((r.end ?? r.data)?.line ?? '', TEMPFAIL, JSON.stringify(script));
        assert.equal(await relays('failed'), failed + 1);
        assert.equal(backend.taken.length, taken);
        backend.script = {};
        if (!r.end) assert.equal((await c.cmd('RSET')).code, 250);
        assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
        assert.equal(backend.taken.length, taken + 1);
        assert.equal(backend.connections.length, connections + 1, 'a fresh back-end connection');
      }
    } finally {
      c.quit();
    }
  });

  it('a reply after the one to the final dot: the client gets the final dot\'s 250 (the back end took the message), and the session is not reused', async () => {
    const c = await client();
    try {
      assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
      backend.script = { dot: '250 2.0.0 Ok: queued\r\n250 2.0.0 again\r\n' };
      const [connections, taken] = [backend.connections.length, backend.taken.length];
      assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
      assert.equal(backend.taken.length, taken + 1);
      backend.script = {};
      assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
      assert.equal(backend.connections.length, connections + 1, 'a fresh back-end connection');
    } finally {
      c.quit();
    }
  });

  it('MAIL FROM on a pooled back-end session that closes instead of answering: the transaction is begun again on a fresh connection, and the client sees only its 250', async () => {
    const c = await client();
    try {
      assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
      backend.script = { hangUpOnce: 'MAIL' };
      const [failed, connections, taken] = [await relays('failed'), backend.connections.length, backend.taken.length];
      assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE)).end?.line, '250 2.0.0 Ok: queued');
      assert.equal(backend.taken.length, taken + 1);
      assert.equal(await relays('failed'), failed);
      assert.equal(backend.connections.length, connections + 1, 'a fresh back-end connection');
    } finally {
      c.quit();
    }
  });

  it('a 3xx reply to MAIL FROM or RCPT TO, or to the final dot, is not passed on: 451', async () => {
    backend.script = { mail: '354 go ahead\r\n' };
    assert.match((await transaction()).last, TEMPFAIL);
    backend.script = { rcpt: '354 go ahead\r\n' };
    assert.match((await transaction()).last, TEMPFAIL);
    backend.script = { dot: '354 more please\r\n' };
    assert.match((await transaction()).last, TEMPFAIL);
  });

  it('a multi-line reply whose lines disagree on the code is a protocol error', async () => {
    backend.script = { dot: '554-5.7.1 Rejected\r\n250 2.0.0 Ok\r\n' };
    const { last } = await transaction();
    assert.match(last, TEMPFAIL);
  });

  it('a reply code outside 2xx-5xx, or run into its text, is a protocol error', async () => {
    backend.script = { dot: '650 2.0.0 Ok\r\n' };
    assert.match((await transaction()).last, TEMPFAIL);
    backend.script = { dot: '2500 Ok\r\n' };
    assert.match((await transaction()).last, TEMPFAIL);
  });

  it('an over-long reply line is refused without waiting for its end', async () => {
    backend.script = { dot: `250 ${'x'.repeat(100_000)}\r\n` };
    assert.match((await transaction()).last, TEMPFAIL);
  });

  it('without PIPELINING, a stray reply after XFORWARD ends the back-end session before MAIL FROM', async () => {
    backend.script = { ehlo: '250-scripted.test\r\n250 XFORWARD NAME ADDR PROTO HELO\r\n', xforward: '250 2.0.0 Ok\r\n250 2.0.0 stray\r\n' };
    const { last, taken } = await transaction();
    assert.match(last, TEMPFAIL);
    assert.equal(taken, 0);
    assert.ok(!backend.connections.at(-1)?.commands.some((l) => l.startsWith('MAIL')), 'MAIL FROM never sent');
  });

  it('the XFORWARD pipelined with MAIL FROM answered with two replies shifts nothing', async () => {
    backend.script = { xforward: '250 2.0.0 Ok\r\n250 2.0.0 stray\r\n' };
    const { last, taken } = await transaction();
    assert.match(last, TEMPFAIL);
    assert.equal(taken, 0);
  });
});
