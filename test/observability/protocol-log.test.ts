import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ProtocolLog } from '../../src/observability/protocol-log.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-plog-'));
}

test('one line per command and reply, with time, session, client and direction, on disk', async () => {
  const dir = await tempDir();
  try {
    const file = path.join(dir, 'sub', 'smtp.log');
    let now = Date.parse('2024-05-01T11:44:31.000Z');
    const log = await ProtocolLog.open(file, { clock: { now: () => now } });
    log.connect('abc123', '192.0.2.7', 'public');
    log.line('abc123', 'out', '220 mx.example ESMTP');
    log.line('abc123', 'in', 'EHLO client.example');
    log.line('abc123', 'out', '250-mx.example\r\n250-SIZE 10485760\r\n250 ENHANCEDSTATUSCODES\r\n');
    now += 1000;
    log.line('abc123', 'in', 'MAIL FROM:<>');
    log.line('zzz', 'in', 'evil\r\n2024-01-01T00:00:00.000Z forged <<< line\u001b[31m');
    log.disconnect('abc123', 'quit');
    await log.close();
    const lines = (await fs.readFile(file, 'utf8')).trimEnd().split('\n');
    assert.deepEqual(lines, [
      '2024-05-01T11:44:31.000Z abc123 192.0.2.7 *** connection from 192.0.2.7 on listener public',
      '2024-05-01T11:44:31.000Z abc123 192.0.2.7 >>> 220 mx.example ESMTP',
      '2024-05-01T11:44:31.000Z abc123 192.0.2.7 <<< EHLO client.example',
      '2024-05-01T11:44:31.000Z abc123 192.0.2.7 >>> 250-mx.example',
      '2024-05-01T11:44:31.000Z abc123 192.0.2.7 >>> 250-SIZE 10485760',
      '2024-05-01T11:44:31.000Z abc123 192.0.2.7 >>> 250 ENHANCEDSTATUSCODES',
      '2024-05-01T11:44:32.000Z abc123 192.0.2.7 <<< MAIL FROM:<>',
      '2024-05-01T11:44:32.000Z zzz - <<< evil',
      '2024-05-01T11:44:32.000Z zzz - <<< 2024-01-01T00:00:00.000Z forged <<< line\\x1b[31m',
      '2024-05-01T11:44:32.000Z abc123 192.0.2.7 *** closed: quit',
    ]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('appends to an existing log rather than truncating it', async () => {
  const dir = await tempDir();
  try {
    const file = path.join(dir, 'smtp.log');
    await fs.writeFile(file, 'earlier line\n');
    const log = await ProtocolLog.open(file);
    log.line('s', 'in', 'QUIT');
    await log.close();
    const lines = (await fs.readFile(file, 'utf8')).trimEnd().split('\n');
    assert.equal(lines[0], 'earlier line');
    assert.match(lines[1] as string, / s - <<< QUIT$/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('when the disk falls behind, lines are dropped and counted instead of queued without bound', async () => {
  const dir = await tempDir();
  try {
    const file = path.join(dir, 'smtp.log');
    const log = await ProtocolLog.open(file, { maxBufferedBytes: 1 });
    // Written synchronously in one turn, so the stream cannot drain between them.
    for (let i = 0; i < 100; i++) log.line('s', 'in', `NOOP ${i}`);
    assert.ok(log.dropped > 0);
    await log.close();
    const text = await fs.readFile(file, 'utf8');
    const written = text.split('\n').filter((l) => l.includes('<<< NOOP')).length;
    assert.equal(written + log.dropped, 100);
    assert.match(text, /\*\*\* \d+ line\(s\) dropped so far/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a path that cannot be opened fails at open', async () => {
  const dir = await tempDir();
  try {
    const blocker = path.join(dir, 'file');
    await fs.writeFile(blocker, '');
    await assert.rejects(ProtocolLog.open(path.join(blocker, 'smtp.log')), /ENOTDIR|EEXIST/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
