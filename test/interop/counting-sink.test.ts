/**
 * The peers benchmark's smtp-sink with its counter written to a file (bench/peer-servers.ts): the
 * count it reports is what smtp-source delivered, with nothing read while the messages flow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { awaitDelivered, startCountingSink } from '../../bench/peer-servers.js';
import { smtpSource, tempDir } from './peers.js';

test('counting sink: counts every message of several sessions, read from its file after the run', async () => {
  const dir = await tempDir('portcullis-counting-sink-');
  const sink = await startCountingSink(dir);
  try {
    assert.equal(await sink.delivered(), 0);
    await smtpSource(sink.port, ['-s', '3', '-m', '7', '-l', '512', '-M', 'bench.test', '-f', 'load@bench.test', '-t', 'user@example.test']);
    assert.equal(await awaitDelivered(sink, 7), 7);
    await smtpSource(sink.port, ['-d', '-s', '2', '-m', '5', '-l', '512', '-M', 'bench.test', '-f', 'load@bench.test', '-t', 'user@example.test']);
    assert.equal(await awaitDelivered(sink, 12), 12);
    assert.match(sink.output(), /mesg=12\r$/);
  } finally {
    await sink.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
