/**
 * Postfix on both sides of `portcullis serve` at its default limits, a private Postfix instance as the
 * back end. Senders: smtp-source with 20 parallel sessions (Postfix's own default destination
 * concurrency), one message per connection, and a private Postfix MTA relaying to the edge with its
 * default client settings. A sender reconnects the moment it has read `221`; the edge must not count
 * the finished session against `maxConnectionsPerClient` (20) any longer. And a client behind a
 * balancer (PROXY) through the edge to Postfix: XFORWARD accepted, the client's own address in
 * Postfix's log (orig_client=) and in the Received: field the edge added, which Postfix delivers
 * under its own, the message in the Maildir, Postfix's own 450/550 passed on unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { canRunPostfix, startPostfixBackend, startPostfixSender, waitForDeliveries } from './postfix.js';
import { pause, smtplibSession, smtpSource, startServe, tempDir, writeRules } from './peers.js';

const MESSAGES = 200;

test(
  `smtp-source -s 20 -> edge (default limits) -> private Postfix: all ${MESSAGES} messages delivered, none refused`,
  { skip: canRunPostfix ? false : 'a Postfix master must start as root' },
  async () => {
    const dir = await tempDir('portcullis-postfix-edge-');
    const postfix = await startPostfixBackend();
    try {
      const config = await writeRules(dir, {
        hostname: 'edge.interop.test',
        acceptedDomains: ['example.test'],
        listeners: [{ name: 'plain', listen: '127.0.0.1:0' }],
        backend: { url: `smtp://127.0.0.1:${postfix.port}`, timeoutMs: 10_000 },
        dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
        badmail: path.join(dir, 'badmail'),
        log: { level: 'warn' },
      });
      const edge = await startServe(config);
      try {
        // smtp-source exits non-zero on the first 421 it meets at a greeting.
        await smtpSource(edge.port, ['-s', '20', '-m', String(MESSAGES), '-l', '2048', '-M', 'source.test', '-f', 'load@source.test', '-t', 'user@example.test']);
      } finally {
        await edge.stop();
      }
      const delivered = await waitForDeliveries(postfix, MESSAGES);
      assert.equal(delivered.length, MESSAGES, await postfix.log());
      for (const m of delivered) {
        assert.match(m, /^Return-Path: <load@source\.test>$/m);
        assert.match(m, /^Delivered-To: user@example\.test$/m);
        // Postfix's trace names the edge; the edge's, below it, names the original client.
        assert.match(m, /^Received: from edge\.interop\.test \(localhost \[127\.0\.0\.1\]\)\s+by backend\.interop\.test/m);
        assert.match(m, /^Received: from source\.test \(\[127\.0\.0\.1\]\)\s+by edge\.interop\.test/m);
      }
    } finally {
      await postfix.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a private Postfix MTA -> edge (default limits) -> private Postfix: 60 messages, every one sent at the first attempt',
  { skip: canRunPostfix ? false : 'a Postfix master must start as root' },
  async () => {
    const dir = await tempDir('portcullis-postfix-edge-');
    const backend = await startPostfixBackend();
    try {
      const config = await writeRules(dir, {
        hostname: 'edge.interop.test',
        acceptedDomains: ['example.test'],
        listeners: [{ name: 'plain', listen: '127.0.0.1:0' }],
        backend: { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 10_000 },
        dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
        badmail: path.join(dir, 'badmail'),
        log: { level: 'warn' },
      });
      const edge = await startServe(config);
      const sender = await startPostfixSender(edge.port);
      try {
        for (let i = 1; i <= 60; i++) {
          await sender.submit('load@sender.interop.test', `user${i}@example.test`, `Subject: m${i}\n\nbody ${i}\n`);
        }
        const delivered = await waitForDeliveries(backend, 60);
        assert.equal(delivered.length, 60, await backend.log());
        // The sender logs each delivery just after the edge's 250; a short bounded wait for the last lines.
        let outcomes = await sender.outcomes();
        for (let i = 0; i < 50 && outcomes.sent < 60; i++, outcomes = await sender.outcomes()) await pause(100);
        assert.equal(outcomes.deferred, 0, outcomes.lines);
        assert.equal(outcomes.sent, 60, outcomes.lines);
        const subjects = delivered.map((m) => /^Subject: (m\d+)$/m.exec(m)?.[1]).sort();
        assert.deepEqual(subjects, Array.from({ length: 60 }, (_, i) => `m${i + 1}`).sort());
      } finally {
        await sender.stop();
        await edge.stop();
      }
    } finally {
      await backend.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  "edge -> private Postfix: XFORWARD accepted and the real client in Postfix's log, the edge's Received: kept, Maildir delivery, Postfix's 450/550 relayed unchanged",
  { skip: canRunPostfix ? false : 'a Postfix master must start as root' },
  async () => {
    const dir = await tempDir('portcullis-postfix-edge-');
    // Postfix refuses two recipients itself, from an inline access map: one for now, one for good.
    const backend = await startPostfixBackend('example.test', [
      'smtpd_recipient_restrictions = check_recipient_access inline:{ {busy@example.test = 450 4.2.1 Mailbox busy, try later}, {gone@example.test = 550 5.1.1 No such mailbox} }, reject_unauth_destination',
    ]);
    try {
      const config = await writeRules(dir, {
        hostname: 'edge.interop.test',
        acceptedDomains: ['example.test'],
        listeners: [{ name: 'lb', listen: '127.0.0.1:0', proxyProtocol: { from: ['127.0.0.1'] } }],
        backend: { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 10_000 },
        dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
        badmail: path.join(dir, 'badmail'),
        log: { level: 'warn' },
      });
      const edge = await startServe(config);
      let seen;
      try {
        seen = await smtplibSession({
          port: edge.port, proxy: { version: 1, source: '192.0.2.25' }, helo: 'client.interop.test',
          from: 'alice@sender.test', to: ['user@example.test', 'busy@example.test', 'gone@example.test'],
          headerFrom: 'alice@sender.test', subject: 'through postfix',
        });
      } finally {
        await edge.stop();
      }
      const log = await backend.log();
      // The lines the client read are the ones Postfix logged as its own refusals, unchanged.
      const refusal = (addr: string): string => new RegExp(`: reject: RCPT from [^:]+: (\\d{3} [^;]*<${addr}>[^;]*);`).exec(log)?.[1] ?? `(no reject of ${addr} in the log)\n${log}`;
      assert.deepEqual(
        seen.rcpt.map((r) => r.text),
        ['250 2.1.5 Ok', refusal('busy@example\\.test'), refusal('gone@example\\.test')],
      );
      assert.match(seen.rcpt[1]!.text, /^450 4\.2\.1 <busy@example\.test>: Recipient address rejected: Mailbox busy, try later$/);
      assert.match(seen.rcpt[2]!.text, /^550 5\.1\.1 <gone@example\.test>: Recipient address rejected: No such mailbox$/);
      assert.equal(seen.dataEnd?.code, 250, JSON.stringify(seen));

      const [msg] = await waitForDeliveries(backend, 1);
      assert.ok(msg, log);
      assert.match(msg, /^Delivered-To: user@example\.test$/m);
      assert.match(msg, /^Subject: through postfix$/m);
      // Postfix's own Received: names its peer, the edge (Postfix 3.7 puts XFORWARD attributes in its log
      // and the next hop's XFORWARD, not in this field); right below it, the edge's names the client.
      assert.match(
        msg,
        /^Received: from edge\.interop\.test \(localhost \[127\.0\.0\.1\]\)\n\s+by backend\.interop\.test .*\n.*\nReceived: from client\.interop\.test \(\[192\.0\.2\.25\]\)\n\s+by edge\.interop\.test/m,
        msg,
      );
      // XFORWARD accepted: Postfix logs its own peer (the edge) as client= and the forwarded client as orig_client=.
      assert.match(log, /disconnect from localhost\[127\.0\.0\.1\] ehlo=1 xforward=1 /, log);
      assert.match(log, /postfix\/smtpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\], orig_client=unknown\[192\.0\.2\.25\]$/m, log);
    } finally {
      await backend.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
);
