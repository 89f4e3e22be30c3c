/** `portcullis serve` as a real subprocess: start-up, SIGHUP reloads, SIGTERM with sessions in flight. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startBackend, type TestBackend } from '../support/backend-server.js';
import { bundledServeRules, serve } from '../support/serve-process.js';
import { RawSmtpClient, edgeRefusal } from '../support/smtp-client.js';
import { run } from '../interop/peers.js';

function rulesText(backendPort: number, blocked: string, grace: number): string {
  return JSON.stringify({
    hostname: 'edge.test',
    acceptedDomains: ['example.com'],
    listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
    senderFilter: { blocked: [blocked] },
    dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
    backend: { url: `smtp://127.0.0.1:${backendPort}`, timeoutMs: 2000 },
    badmail: 'badmail',
    log: { level: 'info' },
    shutdownGraceMs: grace,
  });
}

async function greeted(port: number): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(port);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

describe('portcullis serve', () => {
  let backend: TestBackend;
  let dir: string;
  before(async () => {
    backend = await startBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-serve-'));
  });
  after(async () => {
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('SIGHUP: a broken rule set is refused and logged, the old one stays; a good one takes effect', async () => {
    const config = path.join(dir, 'hup.yaml');
    fs.writeFileSync(config, rulesText(backend.port, 'spam@bad.example', 1000));
    const s = await serve(config);
    try {
      fs.writeFileSync(config, 'hostname: [unclosed');
      s.child.kill('SIGHUP');
      await s.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload refused'));
      let c = await greeted(s.port);
      assert.match((await c.cmd('MAIL FROM:<spam@bad.example>')).line, edgeRefusal('550 5.1.0 Sender Denied'));
      c.quit();
      fs.writeFileSync(config, rulesText(backend.port, 'other@bad.example', 1000));
      s.child.kill('SIGHUP');
      await s.waitLog((l) => l.msg === 'rule set reloaded');
      c = await greeted(s.port);
      assert.equal((await c.cmd('MAIL FROM:<spam@bad.example>')).code, 250);
      c.quit();
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    }
  });

  it('SIGTERM: stops accepting, lets a session in flight finish, answers the idle one 421 4.3.2, exits 0', async () => {
    const config = path.join(dir, 'term.yaml');
    fs.writeFileSync(config, rulesText(backend.port, 'spam@bad.example', 1500));
    const s = await serve(config);
    const busy = await greeted(s.port);
    const idle = await greeted(s.port);
    const before = backend.messages.length;
    assert.equal((await busy.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    assert.equal((await busy.cmd('RCPT TO:<bob@example.com>')).code, 250);
    s.child.kill('SIGTERM');
    // Logged once the listener is closed: from here on a connection is refused.
    const drain = await s.waitLog((l) => l.event === 'drain');
    await assert.rejects(RawSmtpClient.connect(s.port), /ECONNREFUSED/);
    assert.equal((await busy.cmd('DATA')).code, 354);
    busy.write('Subject: in flight\r\n\r\nfinished during the grace period\r\n.\r\n');
    assert.equal((await busy.read()).code, 250);
    assert.equal(backend.messages.length, before + 1, 'the session in flight was delivered');
    busy.quit();
    assert.match((await idle.read(5000)).line, edgeRefusal('421 4.3.2 Service shutting down'));
    assert.equal(await idle.closedByServer(), true);
    assert.equal(await s.exited, 0);
    // What an operator reads in `docker logs` or the journal: the drain as it starts, then the exit.
    assert.equal(s.lines.filter((l) => l.event === 'drain').length, 1, JSON.stringify(s.lines));
    assert.equal(drain.sessions, 2);
    assert.equal(drain.graceMs, 1500);
    assert.equal(drain.msg, 'stopped accepting; waiting up to 1500 ms for 2 session(s) in flight');
    const last = s.lines.at(-1)!;
    assert.equal(last.event, 'exit', JSON.stringify(s.lines));
    assert.equal(last.msg, 'stopped on SIGTERM');
    assert.equal(last.level, 'info');
    assert.equal(last.signal, 'SIGTERM');
    assert.equal(last.code, 0);
    assert.equal(last.sessions, 2);
    assert.equal(last.cut, 1, 'the idle session was still open when the grace period ended');
    const drainMs = Number(last.drainMs);
    assert.ok(drainMs >= 1500 && drainMs < 4000, `the drain lasted the grace period and then some: ${drainMs} ms`);
  });

  it('SIGHUP with the bundled engine: a recipient the reload adds is delivered, not bounced; a refused reload changes neither edge nor engine', async () => {
    const config = path.join(dir, 'bundled.yaml');
    const data = path.join(dir, 'bundled-data');
    const rules = (addresses: string[], listener = 'main'): string =>
      bundledServeRules(data, { listeners: [{ name: listener, listen: '127.0.0.1:0' }], recipientFilter: { rejectUnknown: true }, directory: { addresses } });
    /** How many messages are in the mailbox once `count` are there, or after a bounded wait. */
    const delivered = async (mailbox: string, count: number): Promise<number> => {
      const newDir = path.join(data, 'mailboxes', mailbox, 'new');
      for (let i = 0; ; i++) {
        const n = fs.existsSync(newDir) ? fs.readdirSync(newDir).length : 0;
        if (n >= count || i === 100) return n;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const send = async (port: number, to: string): Promise<void> => {
      const c = await greeted(port);
      assert.equal((await c.cmd('MAIL FROM:<sender@example.org>')).code, 250);
      assert.equal((await c.cmd(`RCPT TO:<${to}>`)).code, 250, `the edge accepts ${to}`);
      assert.equal((await c.cmd('DATA')).code, 354);
      c.write('Subject: reload\r\n\r\nbody\r\n.\r\n');
      assert.equal((await c.read()).code, 250);
      c.quit();
    };
    fs.writeFileSync(config, rules(['alice@example.com']));
    const s = await serve(config);
    try {
      fs.writeFileSync(config, rules(['alice@example.com', 'bob@example.com']));
      s.child.kill('SIGHUP');
      await s.waitLog((l) => l.msg === 'rule set reloaded');
      await send(s.port, 'bob@example.com');
      assert.equal(await delivered('bob@example.com', 1), 1, 'the engine delivers the recipient the reload added');
      // Valid on its own, but it renames the running listener: refused, so bob stays in both directories.
      fs.writeFileSync(config, rules(['alice@example.com'], 'renamed'));
      s.child.kill('SIGHUP');
      const refused = await s.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload refused'));
      assert.match(String(refused.err), /^listeners\[0\]\.name: 'renamed' is not a running listener/);
      await send(s.port, 'bob@example.com');
      assert.equal(await delivered('bob@example.com', 2), 2);
      assert.equal(s.lines.filter((l) => l.msg === 'directory reloaded').length, 1, 'the engine took no directory from the refused rule set');
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    }
  });

  it('a listener port already taken: the error is printed and the process exits 1, bundled engine and all', async () => {
    const taken = net.createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    try {
      const config = path.join(dir, 'taken.yaml');
      fs.writeFileSync(
        config,
        JSON.stringify({
          hostname: 'edge.test',
          acceptedDomains: ['example.com'],
          listeners: [{ name: 'main', listen: `127.0.0.1:${(taken.address() as net.AddressInfo).port}` }],
          dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
          transport: { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, dataDir: path.join(dir, 'taken-data') },
          log: { level: 'warn' },
        }),
      );
      const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config], { timeoutMs: 30_000 });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /EADDRINUSE/);
    } finally {
      taken.close();
    }
  });

  it('state.url is the store serve opens: an unreachable Redis is logged, and mail still flows on the local view', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    const config = path.join(dir, 'state.json');
    const rules = JSON.parse(rulesText(backend.port, 'spam@bad.example', 1000)) as Record<string, unknown>;
    fs.writeFileSync(config, JSON.stringify({ ...rules, state: { url: `redis://127.0.0.1:${port}`, timeoutMs: 200 } }));
    const s = await serve(config);
    try {
      const down = await s.waitLog((l) => l.event === 'state-store', 15_000);
      assert.deepEqual([down.level, down.up], ['warn', false]);
      const c = await greeted(s.port);
      assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
      c.quit();
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    }
  });
});
