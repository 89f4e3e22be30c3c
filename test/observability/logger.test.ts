import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger, logDecision } from '../../src/observability/logger.js';

test('logDecision writes exactly one JSON line per decision, with every field', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-log-'));
  try {
    const file = path.join(dir, 'logs', 'edge.log');
    const logger = createLogger({ level: 'info', destination: file });
    logDecision(logger, {
      session: 's1',
      client: '192.0.2.7',
      listener: 'public',
      step: 9,
      check: 'dnsbl',
      rule: 'Spamhaus ZEN',
      reply: '550 5.7.1 192.0.2.7 has been blocked by Spamhaus ZEN',
      action: 'reject',
    });
    logDecision(logger, { session: 's1', client: '192.0.2.7', listener: 'public', step: 7, check: 'sender filter', reply: '250 2.1.0 a@b.example...Sender OK', action: 'accept' });
    logger.debug('not at this level');
    const lines = (await fs.readFile(file, 'utf8')).trimEnd().split('\n');
    assert.equal(lines.length, 2);
    const first = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(first.level, 'info');
    assert.equal(first.event, 'decision');
    assert.equal(first.session, 's1');
    assert.equal(first.client, '192.0.2.7');
    assert.equal(first.listener, 'public');
    assert.equal(first.step, 9);
    assert.equal(first.check, 'dnsbl');
    assert.equal(first.rule, 'Spamhaus ZEN');
    assert.equal(first.reply, '550 5.7.1 192.0.2.7 has been blocked by Spamhaus ZEN');
    assert.equal(first.action, 'reject');
    assert.match(String(first.time), /^\d{4}-\d\d-\d\dT/);
    const second = JSON.parse(lines[1] as string) as Record<string, unknown>;
    assert.equal(second.rule, undefined);
    assert.equal(second.step, 7);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
