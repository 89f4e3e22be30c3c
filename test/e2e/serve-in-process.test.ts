/**
 * `serve` with the bundled engine in its own process: the edge hands each transaction to the engine
 * directly, with no SMTP text and no loopback TCP connection to the engine's listener, which still
 * takes mail from trusted clients directly; with fsync on, a message for one mailbox is in its Maildir
 * when the client hears 250 (delivery at receipt).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serveBundled, type BundledServe, type Served } from '../support/serve-process.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { run, swaksSession } from '../interop/peers.js';
import type { QueueSummary } from '../../src/transport/admin-api.js';
import { adminRequest } from '../../src/transport/admin-client.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { maildirFiles, waitFor } from '../transport/engine-harness.js';

/** Established TCP connections from or to `port` on loopback, as the kernel lists them. */
async function tcpConnections(port: number): Promise<string[]> {
  const res = await run('ss', ['-tnH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { timeoutMs: 10_000 });
  assert.equal(res.code, 0, res.stderr);
  return res.stdout.split('\n').filter((l) => l.trim() !== '');
}

/** The messages of a mailbox's Maildir once there are `count` of them. */
async function delivered(data: string, mailbox: string, count: number): Promise<string[]> {
  const root = path.join(data, 'mailboxes');
  await waitFor(async () => (await maildirFiles(root, mailbox)).length >= count, 10_000, `${count} messages for ${mailbox}`);
  const newDir = path.join(mailboxDir(root, mailbox), 'new');
  return Promise.all((await maildirFiles(root, mailbox)).map((f) => fs.promises.readFile(path.join(newDir, f), 'latin1')));
}

describe('serve with the bundled engine in the same process', () => {
  let b: BundledServe;
  let data: string;
  let s: Served;
  let enginePort: number;

  before(async () => {
    b = await serveBundled('in-process');
    s = b.served;
    data = b.data;
    const started = await s.waitLog((l) => l.msg === 'transport engine started');
    enginePort = Number((started.smtp as { port: number }).port);
  });
  after(async () => {
    assert.equal(await b.stop(), 0, 'serve stops cleanly, the engine draining its in-process sessions');
  });

  it('relays to the engine with no TCP connection to its listener, and the engine Received: field names the original client', async () => {
    // A transaction held open: the engine has answered MAIL FROM and RCPT TO through the edge, live.
    const c = await RawSmtpClient.connect(s.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO held.example')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<held@sender.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.com>')).code, 250);
    assert.deepEqual(await tcpConnections(enginePort), [], 'no TCP connection to the engine while the edge holds a back-end session');
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: held\r\n\r\nbody\r\n.\r\n');
    assert.match((await c.read()).line, /^250 2\.6\.0 <[^@>]+@edge\.test> Queued mail for delivery/);
    c.quit();

    for (const subject of ['one', 'two']) {
      const r = await swaksSession({ port: s.port, localAddress: '127.0.0.2', helo: 'client.sender.test', from: 'bob@sender.test', to: ['alice@example.com'], headerFrom: 'bob@sender.test', subject });
      assert.equal(r.dataEnd?.code, 250, JSON.stringify(r));
    }
    const mail = await delivered(data, 'alice@example.com', 3);
    assert.equal(mail.length, 3);
    const viaSwaks = mail.filter((m) => /\nSubject: (one|two)\r?\n/.test(m));
    assert.equal(viaSwaks.length, 2);
    for (const m of viaSwaks) {
      // The engine's field (its first) names the client the edge saw, passed on with the transaction.
      const engineField = /^Received: from ([^\n]*)\n(?:\t[^\n]*\n)*?\tby edge\.test \(Portcullis transport\)/m.exec(m);
      assert.ok(engineField, m);
      assert.equal(engineField[1]?.trim(), 'client.sender.test ([127.0.0.2])');
    }
    assert.deepEqual(await tcpConnections(enginePort), [], 'the pooled idle sessions hold no connection either');
  });

  it("the engine's TCP listener still takes mail from a trusted client directly", async () => {
    const r = await swaksSession({ port: enginePort, helo: 'trusted.example', from: 'app@example.com', to: ['alice@example.com'], headerFrom: 'app@example.com', subject: 'direct' });
    assert.match(r.dataEnd?.text ?? JSON.stringify(r), /^250 2\.6\.0 <[^@>]+@edge\.test> Queued mail for delivery/);
    const mail = await delivered(data, 'alice@example.com', 4);
    const direct = mail.find((m) => /\nSubject: direct\r?\n/.test(m));
    assert.ok(direct, 'the message sent to the engine directly is in the Maildir');
    assert.match(direct, /^Received: from trusted\.example \(\[127\.0\.0\.1\]\)/m);
  });
});

describe('serve with the bundled engine, fsync on: delivery at receipt', () => {
  let b: BundledServe;
  let data: string;
  let s: Served;
  let adminAddress: string;

  before(async () => {
    // fsync on, as in production: a message that went through the queue would still be queued at its
    // 250, its record waiting for the batched sync of new/.
    b = await serveBundled('at-receipt', (dataDir) => ({ transport: { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, dataDir, fsync: true } }));
    s = b.served;
    data = b.data;
    const started = await s.waitLog((l) => l.msg === 'transport engine started');
    const admin = started.admin as { host: string; port: number };
    adminAddress = `${admin.host}:${admin.port}`;
  });
  after(async () => {
    assert.equal(await b.stop(), 0);
  });

  it('a message for one mailbox is in its Maildir when the client hears 250 through the edge, and no queue holds it', async () => {
    const c = await RawSmtpClient.connect(s.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO receipt.example')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<receipt@sender.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: at receipt\r\n\r\nbody\r\n.\r\n');
    const reply = await c.read();
    const id = /^250 2\.6\.0 <([^@>]+)@edge\.test> Queued mail for delivery/.exec(reply.line)?.[1];
    assert.ok(id, reply.line);
    const files = await maildirFiles(path.join(data, 'mailboxes'), 'alice@example.com');
    assert.equal(files.filter((f) => f.includes(`_Q${id}-1.`)).length, 1, 'in new/ at the 250');
    c.quit();
    const { queues } = (await adminRequest(adminAddress, 'GET', '/queues')) as { queues: QueueSummary[] };
    assert.ok(queues.every((q) => q.count === 0), JSON.stringify(queues));
  });
});
