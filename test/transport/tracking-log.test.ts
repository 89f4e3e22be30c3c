import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { TrackingLog } from '../../src/transport/tracking-log.js';

test('a log folder that cannot be made fails that write only; once it can be, events are written again', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'portcullis-track-'));
  try {
    const blocker = path.join(root, 'logs');
    await writeFile(blocker, 'a file where the folder should be');
    const log = new TrackingLog(path.join(blocker, 'tracking.log'));
    const errors: Error[] = [];
    const event = { event: 'received' as const, id: 'Q1', sender: 'a@example.org', recipients: ['b@example.test'], size: 10 };
    log.log(event, Date.now(), (e) => errors.push(e));
    await log.flush();
    assert.equal(errors.length, 1, 'the failure is reported');
    await rm(blocker);
    log.log({ ...event, id: 'Q2' }, Date.now(), (e) => errors.push(e));
    await log.flush();
    assert.equal(errors.length, 1, 'no second failure');
    assert.match(await readFile(path.join(blocker, 'tracking.log'), 'utf8'), /"id":"Q2"/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
