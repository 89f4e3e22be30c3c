/**
 * Postfix on both sides of `portcullis serve` at its default limits, a private Postfix instance as the
 * back end. Senders: smtp-source with 20 parallel sessions (Postfix's own default destination
 * concurrency), one message per connection, and a private Postfix MTA relaying to the edge with its
 * default client settings. A sender reconnects the moment it has read `221`; the edge must not count
 * the finished session against `maxConnectionsPerClient` (20) any longer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { canRunPostfix, startPostfixBackend, startPostfixSender, waitForDeliveries } from './postfix.js';
import { pause, smtpSource, startServe, tempDir, writeRules } from './peers.js';

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
