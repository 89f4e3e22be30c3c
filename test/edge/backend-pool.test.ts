/**
 * The back-end session pool, seen from outside: raw clients talk SMTP to the whole edge, in front of a
 * recording back end (smtp-server) or a scripted one that misbehaves on cue; every test counts the
 * back end's connections and checks what each client was told against what the back end took.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { startScriptedBackend, type ScriptedBackend, type ScriptedConnection } from '../support/scripted-backend.js';
import { edgeRefusal, sendMail, type RawSmtpClient } from '../support/smtp-client.js';
import { sample } from '../support/metrics-text.js';
import { startBackend } from '../support/backend-server.js';

const TEMPFAIL = '451 4.7.0 Temporary server error. Please try again later.';

function message(tag: string): string {
  return `From: a@example.org\r\nTo: b@example.com\r\nSubject: ${tag}\r\n\r\nbody of ${tag}\r\n`;
}

async function metric(h: Harness, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sample(await h.metrics.render(), name, labels);
}

/** Polls `check` every 20 ms until it holds, for at most `ms`; fails naming `what`. */
async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function greeted(h: Harness, helo = 'client.example'): Promise<RawSmtpClient> {
  const c = await h.connect();
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd(`EHLO ${helo}`)).code, 250);
  return c;
}

/** One message on a new client connection; the client's last reply. */
async function oneMessage(h: Harness, tag: string): Promise<string> {
  const c = await greeted(h);
  try {
    const r = await sendMail(c, 'a@example.org', ['b@example.com'], message(tag));
    return (r.end ?? r.data ?? r.rcpts.find((x) => x.code !== 250) ?? r.mail).line;
  } finally {
    c.quit();
  }
}

describe('back-end pool: reuse, against a recording back end', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('20 messages from 5 concurrent clients use at most 5 back-end connections, each message with its own client XFORWARD', async () => {
    const before = h.backend.connections;
    const sent = h.backend.messages.length;
    await Promise.all(
      Array.from({ length: 5 }, async (_, client) => {
        const c = await greeted(h, `client${client}.example`);
        try {
          for (let n = 0; n < 4; n++) {
            const r = await sendMail(c, `c${client}@example.org`, ['b@example.com'], message(`c${client}-${n}`));
            assert.equal(r.end?.code, 250, `client ${client} message ${n}`);
          }
        } finally {
          c.quit();
        }
      }),
    );
    const got = h.backend.messages.slice(sent);
    assert.equal(got.length, 20, 'every message delivered once');
    assert.ok(h.backend.connections - before <= 5, `${h.backend.connections - before} back-end connections for 20 messages`);
    // Never another client's attributes: the HELO forwarded with each message is its own sender's.
    for (const m of got) assert.equal(m.xforward.HELO, `${m.from.slice(0, 2).replace('c', 'client')}.example`, m.from);
    assert.ok((await metric(h, 'portcullis_backend_pool_reused_total')) >= 15, 'most transactions reused a session');
    assert.ok((await metric(h, 'portcullis_backend_pool_opened_total')) <= 5 + before);
    await until(async () => (await metric(h, 'portcullis_backend_pool_sessions', { state: 'busy' })) === 0, 5000, 'every session given back');
    assert.ok((await metric(h, 'portcullis_backend_pool_sessions', { state: 'idle' })) >= 1);
  });

  it('a client that greets again mid-connection is passed on with its new HELO name and protocol from its next message', async () => {
    const sent = h.backend.messages.length;
    const c = await greeted(h, 'first.example');
    try {
      const greetings = ['first.example', 'EHLO second.example', 'HELO second.example', 'EHLO second.example'];
      for (const [n, greeting] of greetings.entries()) {
        if (n > 0) assert.equal((await c.cmd(greeting)).code, 250);
        const r = await sendMail(c, 'a@example.org', ['b@example.com'], message(`greeting-${n}`));
        assert.equal(r.end?.code, 250, greeting);
      }
    } finally {
      c.quit();
    }
    const got = h.backend.messages.slice(sent).map((m) => [m.xforward.HELO, m.xforward.PROTO]);
    assert.deepEqual(got, [
      ['first.example', 'ESMTP'],
      ['second.example', 'ESMTP'],
      ['second.example', 'SMTP'],
      ['second.example', 'ESMTP'],
    ]);
  });

  it("a client never gets another client's reply: each concurrent RCPT gets the back end's reply for its own recipient", async () => {
    const rcpt: Record<string, { code: number; text: string }> = {};
    for (let i = 0; i < 8; i++) rcpt[`full${i}@example.com`] = { code: 452, text: `Mailbox full${i} is full` };
    h.backend.behaviour = { rcpt };
    try {
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const c = await greeted(h);
          try {
            for (let n = 0; n < 3; n++) {
              assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
              const r = await c.cmd(`RCPT TO:<full${i}@example.com>`);
              assert.equal(r.line, `452 4.2.2 Mailbox full${i} is full`);
              assert.equal((await c.cmd('RSET')).code, 250);
            }
          } finally {
            c.quit();
          }
        }),
      );
    } finally {
      h.backend.behaviour = {};
    }
  });
});

describe('back-end pool: health, against a scripted back end', () => {
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

  /** Call before a transaction; the returned function names the one back-end connection it used. */
  function watch(): () => ScriptedConnection {
    const seen = new Map(backend.connections.map((c) => [c, c.commands.length]));
    return () => {
      const used = backend.connections.filter((c) => c.commands.length > (seen.get(c) ?? 0) && c.commands.some((l) => l.startsWith('MAIL')));
      assert.equal(used.length, 1, 'one back-end connection carried the transaction');
      return used[0] as ScriptedConnection;
    };
  }

  async function idleSessions(): Promise<number> {
    return metric(h, 'portcullis_backend_pool_sessions', { state: 'idle' });
  }

  it('a pooled session the back end closed while idle: the next transaction gets its 250 on a fresh one, before the client sees anything', async () => {
    assert.equal(await oneMessage(h, 'warm'), '250 2.0.0 Ok: queued');
    await until(async () => (await idleSessions()) >= 1, 5000, 'a session idle');
    const opened = backend.connections.length;
    // The idle session is found gone only when borrowed: the back end closes it at the pipelined XFORWARD + MAIL.
    backend.script = { hangUpOnce: 'XFORWARD' };
    assert.equal(await oneMessage(h, 'after-hangup'), '250 2.0.0 Ok: queued');
    assert.equal(backend.connections.length, opened + 1, 'one fresh connection');
    assert.equal(backend.taken.length, 2);
  });

  it("a pooled session closed at MAIL FROM, whose fresh connection refuses the sender: the client gets the fresh one's refusal as written, and the metrics count it", async () => {
    assert.equal(await oneMessage(h, 'warm'), '250 2.0.0 Ok: queued');
    await until(async () => (await idleSessions()) >= 1, 5000, 'a session idle');
    const opened = backend.connections.length;
    const rejected = await metric(h, 'portcullis_relay_total', { outcome: 'rejected' });
    backend.script = { hangUpOnce: 'XFORWARD', mail: '550 5.7.1 Refused by the fresh one\r\n' };
    const c = await greeted(h);
    try {
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).line, '550 5.7.1 Refused by the fresh one');
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 503);
    } finally {
      c.quit();
    }
    assert.equal(backend.connections.length, opened + 1, 'one fresh connection');
    assert.equal(await metric(h, 'portcullis_relay_total', { outcome: 'rejected' }), rejected + 1);
    assert.equal(backend.taken.length, 1, 'only the warm-up message');
  });

  it('an idle session the back end closes (with its 421) is forgotten, and the next transaction opens a fresh one', async () => {
    assert.equal(await oneMessage(h, 'warm'), '250 2.0.0 Ok: queued');
    await until(async () => (await idleSessions()) >= 1, 5000, 'a session idle');
    backend.say('421 4.4.2 scripted.test Error: timeout exceeded\r\n', true);
    await until(async () => (await idleSessions()) === 0, 5000, 'the closed sessions forgotten');
    const opened = backend.connections.length;
    assert.equal(await oneMessage(h, 'after-421'), '250 2.0.0 Ok: queued');
    assert.equal(backend.connections.length, opened + 1);
  });

  it('a back end that answers out of turn on a pooled session: that client gets 451 4.7.0, the session is closed, the next client is fine', async () => {
    assert.equal(await oneMessage(h, 'warm'), '250 2.0.0 Ok: queued');
    await until(async () => (await idleSessions()) >= 1, 5000, 'a session idle');
    const opened = backend.connections.length;
    backend.script = { rcpt: '250 2.1.5 Ok\r\n250 2.0.0 stray\r\n' };
    const used = watch();
    assert.match(await oneMessage(h, 'stray'), edgeRefusal(TEMPFAIL));
    const broken = used();
    assert.equal(backend.connections.length, opened, 'the stray came on a reused session');
    await broken.closed;
    const commands = broken.commands.length;
    backend.script = {};
    assert.equal(await oneMessage(h, 'next'), '250 2.0.0 Ok: queued');
    assert.equal(broken.commands.length, commands, 'the broken session was never lent again');
    assert.deepEqual(backend.taken.map((t) => /Subject: (\S+)/.exec(t)?.[1]), ['warm', 'next']);
  });

  it("a back end's 421 on a pooled session: the client gets 451 4.7.0 and that session is never reused", async () => {
    assert.equal(await oneMessage(h, 'warm'), '250 2.0.0 Ok: queued');
    await until(async () => (await idleSessions()) >= 1, 5000, 'a session idle');
    backend.script = { rcpt: '421 4.3.2 Shutting down\r\n' };
    const used = watch();
    assert.match(await oneMessage(h, 'refused'), edgeRefusal(TEMPFAIL));
    const closing = used();
    await closing.closed;
    backend.script = {};
    const commands = closing.commands.length;
    assert.equal(await oneMessage(h, 'next'), '250 2.0.0 Ok: queued');
    assert.equal(closing.commands.length, commands);
  });

  it('RSET answered with anything but 250: the session is closed, not lent again', async () => {
    backend.script = { rset: '500 5.5.1 What?\r\n' };
    const c = await greeted(h);
    try {
      const which = watch();
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
      const used = which();
      assert.equal((await c.cmd('RSET')).code, 250, "the client's RSET is the edge's own");
      await used.closed;
      assert.equal(used.commands.at(-1), 'RSET');
      backend.script = {};
      const r = await sendMail(c, 'a@example.org', ['b@example.com'], message('after-rset'));
      assert.equal(r.end?.line, '250 2.0.0 Ok: queued');
      assert.equal(used.commands.at(-1), 'RSET', 'never lent again');
    } finally {
      c.quit();
    }
  });

  it('shutdown says QUIT to idle sessions', async () => {
    const own = await startScriptedBackend();
    const edge = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${own.port}`, timeoutMs: 2000 };
    });
    try {
      assert.equal(await oneMessage(edge, 'before-stop'), '250 2.0.0 Ok: queued');
      await until(async () => (await metric(edge, 'portcullis_backend_pool_sessions', { state: 'idle' })) === 1, 5000, 'a session idle');
    } finally {
      await edge.close();
    }
    const idle = own.connections[0];
    assert.ok(idle);
    await idle.closed;
    assert.equal(idle.commands.at(-1), 'QUIT');
    await own.close();
  });
});

describe('back-end pool: limits', () => {
  it('maxTransactions: a connection carries at most that many, the last one with QUIT after its final dot', async () => {
    const backend = await startScriptedBackend();
    const h = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000, pool: { maxTransactions: 3 } };
    });
    try {
      const c = await greeted(h);
      try {
        for (let n = 0; n < 7; n++) assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], message(`m${n}`))).end?.code, 250);
      } finally {
        c.quit();
      }
      assert.equal(backend.taken.length, 7);
      assert.equal(backend.connections.length, 3, '7 messages, 3 per connection');
      const mails = backend.connections.map((conn) => conn.commands.filter((l) => l.startsWith('MAIL')).length);
      assert.deepEqual(mails, [3, 3, 1]);
      for (const conn of backend.connections.slice(0, 2)) {
        await conn.closed;
        assert.equal(conn.commands.at(-1), 'QUIT');
      }
    } finally {
      await h.close();
      await backend.close();
    }
  });

  it('idleMs: an idle session is told QUIT once it has waited that long', async () => {
    const backend = await startScriptedBackend();
    const h = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000, pool: { idleMs: 300 } };
    });
    try {
      const started = Date.now();
      assert.equal(await oneMessage(h, 'once'), '250 2.0.0 Ok: queued');
      const conn = backend.connections[0];
      assert.ok(conn);
      await conn.closed;
      assert.ok(Date.now() - started >= 300, 'not before idleMs');
      assert.equal(conn.commands.at(-1), 'QUIT');
      assert.equal(await metric(h, 'portcullis_backend_pool_sessions', { state: 'idle' }), 0);
    } finally {
      await h.close();
      await backend.close();
    }
  });

  it('maxIdle 0 turns pooling off: a connection per transaction, QUIT with the final dot', async () => {
    const backend = await startScriptedBackend();
    const h = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000, pool: { maxIdle: 0 } };
    });
    try {
      for (let n = 0; n < 3; n++) assert.equal(await oneMessage(h, `m${n}`), '250 2.0.0 Ok: queued');
      assert.equal(backend.connections.length, 3);
      for (const conn of backend.connections) {
        await conn.closed;
        assert.equal(conn.commands.at(-1), 'QUIT');
      }
      assert.equal(await metric(h, 'portcullis_backend_pool_reused_total'), 0);
      assert.equal(await metric(h, 'portcullis_backend_pool_opened_total'), 3);
    } finally {
      await h.close();
      await backend.close();
    }
  });

  it('a reload that changes the back end drains the old pool: its idle session is told QUIT, new transactions go to the new back end', async () => {
    const first = await startScriptedBackend();
    const second = await startScriptedBackend();
    const h = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${first.port}`, timeoutMs: 2000 };
    });
    try {
      assert.equal(await oneMessage(h, 'to-first'), '250 2.0.0 Ok: queued');
      await until(async () => (await metric(h, 'portcullis_backend_pool_sessions', { state: 'idle' })) === 1, 5000, 'a session idle');
      h.input.backend = { url: `smtp://127.0.0.1:${second.port}`, timeoutMs: 2000 };
      await h.edge.reload();
      const old = first.connections[0];
      assert.ok(old);
      await old.closed;
      assert.equal(old.commands.at(-1), 'QUIT');
      assert.equal(await oneMessage(h, 'to-second'), '250 2.0.0 Ok: queued');
      assert.equal(first.taken.length, 1);
      assert.equal(second.taken.length, 1);
    } finally {
      await h.close();
      await first.close();
      await second.close();
    }
  });

  it('an XCLIENT back end that stops offering XCLIENT after the first (smtp-server): no session is lent again, so no message carries an earlier client', async () => {
    const backend = await startBackend({ xclient: true });
    const h = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000 };
    });
    try {
      for (let n = 0; n < 3; n++) {
        const c = await greeted(h, `client${n}.example`);
        try {
          assert.equal((await sendMail(c, 'a@example.org', ['b@example.com'], message(`x${n}`))).end?.code, 250, `message ${n}`);
        } finally {
          c.quit();
        }
        await until(async () => (await metric(h, 'portcullis_backend_pool_sessions', { state: 'busy' })) === 0, 5000, 'the session given back');
      }
      assert.deepEqual(
        backend.messages.map((m) => [m.xclient.ADDR, m.xclient.HELO, m.helo]),
        [0, 1, 2].map((n) => ['127.0.0.1', `client${n}.example`, 'edge.test']),
        "each message passed on with its own client's XCLIENT, EHLO said again after it",
      );
      assert.equal(backend.connections, 3, 'a connection each');
      assert.equal(await metric(h, 'portcullis_backend_pool_sessions', { state: 'idle' }), 0);
    } finally {
      await h.close();
      await backend.close();
    }
  });
});
