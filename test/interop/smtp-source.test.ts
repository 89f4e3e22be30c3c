/**
 * Postfix's smtp-source through `portcullis serve` to Postfix's smtp-sink: parallel sessions,
 * several messages per session, every one arriving once with its envelope.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startServe, startSmtpSink, smtpSource, tempDir, waitForSinkMessages, writeRules } from './peers.js';

test('smtp-source -> edge -> smtp-sink: 60 messages over 4 parallel sessions all arrive', async () => {
  const dir = await tempDir('portcullis-source-');
  const sink = await startSmtpSink();
  try {
    const config = await writeRules(dir, {
      hostname: 'edge.interop.test',
      acceptedDomains: ['example.test'],
      listeners: [{ name: 'plain', listen: '127.0.0.1:0' }],
      backend: { url: `smtp://127.0.0.1:${sink.port}`, timeoutMs: 10_000 },
      badmail: path.join(dir, 'badmail'),
      log: { level: 'warn' },
    });
    const edge = await startServe(config);
    try {
      // -d: several messages per connection, so the edge's per-transaction back-end sessions are exercised.
      await smtpSource(edge.port, ['-s', '4', '-m', '60', '-d', '-l', '4096', '-M', 'source.test', '-f', 'load@source.test', '-t', 'user@example.test']);
      const received = await waitForSinkMessages(sink, 60);
      assert.equal(received.length, 60);
      for (const m of received) {
        assert.equal(m.mailFrom, 'load@source.test');
        assert.deepEqual(m.rcptTo, ['user@example.test']);
        assert.match(m.content, /^Received: /m);
        // smtp-source's 4096-byte payload arrives whole: 52 lines of 78 X's plus the remainder.
        assert.ok((m.content.match(/X{20,}/g) ?? []).join('').length >= 4096 - 200);
      }
    } finally {
      await edge.stop();
    }
  } finally {
    await sink.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
