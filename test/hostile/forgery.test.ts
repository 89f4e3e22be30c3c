/**
 * What the edge vouches for to the back end (XFORWARD, the envelope), a client cannot forge: a HELO
 * argument that is not a host name or address literal is refused before it can reach XFORWARD, and
 * 8-bit addresses are refused with 553 5.6.7 because the edge does not offer SMTPUTF8. A raw client
 * talks to the whole edge; a scripted back end records the exact lines it was sent.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { startScriptedBackend, type ScriptedBackend } from '../support/scripted-backend.js';
import { sendMail, type RawSmtpClient } from '../support/smtp-client.js';

const MESSAGE = 'From: a@example.org\r\nTo: b@example.com\r\nSubject: t\r\n\r\nbody\r\n';

describe('hostile client: forgery of what the edge passes on', () => {
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

  async function connect(): Promise<RawSmtpClient> {
    const c = await h.connect();
    assert.equal((await c.read()).code, 220);
    return c;
  }

  /** The commands the back end saw on its most recent connection. */
  function lastCommands(): string[] {
    return backend.connections.at(-1)?.commands ?? [];
  }

  it('a HELO with non-ASCII characters is refused 501 5.5.4 and never reaches XFORWARD', async () => {
    // U+2020 would have gone out as xtext "+2020", which the back end decodes as a space and "20".
    const c = await connect();
    try {
      for (const bad of ['x\u2020y.example', 'caf\u00e9.example', '\u0430pple.com']) {
        const r = await c.cmd(`EHLO ${bad}`);
        assert.equal(r.code, 501, bad);
        assert.match(r.line, /^501 5\.5\.4 /);
      }
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 503, 'no HELO was taken');
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      const r = await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE);
      assert.equal(r.end?.code, 250);
      assert.ok(lastCommands().includes('XFORWARD NAME=[UNAVAILABLE] ADDR=127.0.0.1 PROTO=ESMTP HELO=client.example'), lastCommands().join('|'));
    } finally {
      c.quit();
    }
  });

  it('HELO arguments that are not host names or address literals are refused', async () => {
    const c = await connect();
    try {
      for (const bad of ['a+3D.example', 'a=b', 'bad..example', '[300.1.1.1]', '[foo]', '[IPv6:1.2.3.4]', '"quoted"', 'x<y>', 'a@b.example', '.example', `${'a'.repeat(64)}.example`]) {
        const r = await c.cmd(`HELO ${bad}`);
        assert.equal(r.line.slice(0, 9), '501 5.5.4', bad);
      }
    } finally {
      c.quit();
    }
  });

  it('host names, bare and bracketed IP literals are accepted as HELO and passed on exactly', async () => {
    for (const good of ['mail.example.org', 'MY_PC', 'localhost', 'mx-1.example.org.', '192.0.2.1', '[192.0.2.1]', '[IPv6:2001:db8::1]', 'xn--bcher-kva.example']) {
      const c = await connect();
      try {
        assert.equal((await c.cmd(`EHLO ${good}`)).code, 250, good);
        const r = await sendMail(c, 'a@example.org', ['b@example.com'], MESSAGE);
        assert.equal(r.end?.code, 250, good);
        // The back-end connection is pooled: this transaction's XFORWARD is the last one on it.
        const xforward = lastCommands().filter((l) => l.startsWith('XFORWARD ')).at(-1);
        // The edge hands on the name as smtp-server keeps it (lower-case); `[`, `]` and `:` are xtext as is.
        assert.equal(xforward?.split(' ').at(-1), `HELO=${good.toLowerCase()}`, good);
      } finally {
        c.quit();
      }
    }
  });

  it('an 8-bit MAIL FROM is refused 553 5.6.7 (no SMTPUTF8) and the back end is not contacted', async () => {
    const before = backend.connections.length;
    const c = await connect();
    try {
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<j\u00f6rg@example.org>')).line.slice(0, 9), '553 5.6.7');
      assert.equal((await c.cmd('MAIL FROM:<user@b\u00fccher.example>')).line.slice(0, 9), '553 5.6.7');
      c.write(Buffer.from('MAIL FROM:<j\xf6rg@example.org>\r\n', 'latin1'));
      assert.equal((await c.read()).line.slice(0, 9), '553 5.6.7', 'a raw Latin-1 byte too');
      assert.equal(backend.connections.length, before);
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250, 'the session goes on');
    } finally {
      c.quit();
    }
  });

  it('an 8-bit RCPT TO is refused 553 5.6.7 and never offered to the back end', async () => {
    const c = await connect();
    try {
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<j\u00f6rg@example.com>')).line.slice(0, 9), '553 5.6.7');
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).code, 250);
      assert.deepEqual(
        lastCommands().filter((l) => l.startsWith('RCPT')),
        ['RCPT TO:<b@example.com>'],
      );
    } finally {
      c.quit();
    }
  });

  it('an IDN sender in punycode is ASCII: accepted and relayed as the client wrote it', async () => {
    const c = await connect();
    try {
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      const r = await sendMail(c, 'a@xn--bcher-kva.example', ['b@example.com'], MESSAGE);
      assert.equal(r.end?.code, 250);
      assert.ok(lastCommands().includes('MAIL FROM:<a@xn--bcher-kva.example>'), lastCommands().join('|'));
    } finally {
      c.quit();
    }
  });
});
