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

test('a burst logged in one tick and across ticks is written whole and in order; after close, a new log on the same file appends after it', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'portcullis-track-'));
  try {
    const file = path.join(root, 'tracking.log');
    const errors: Error[] = [];
    const event = (i: number) => ({ event: 'received' as const, id: `Q${i}`, sender: 'a@example.org', recipients: ['b@example.test'], size: i });
    const first = new TrackingLog(file);
    for (let i = 0; i < 300; i++) first.log(event(i), Date.now(), (e) => errors.push(e));
    for (let i = 300; i < 400; i++) {
      first.log(event(i), Date.now(), (e) => errors.push(e));
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    await first.close();
    // As after a restart: the file is opened again and appended to.
    const second = new TrackingLog(file);
    for (let i = 400; i < 450; i++) second.log(event(i), Date.now(), (e) => errors.push(e));
    await second.close();
    assert.deepEqual(errors, []);
    const ids = (await readFile(file, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    assert.deepEqual(ids, Array.from({ length: 450 }, (_, i) => `Q${i}`));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a write that fails on the open file (ENOSPC on /dev/full) is reported, and so is the next batch: the log keeps trying, nothing is dropped silently', async () => {
  const log = new TrackingLog('/dev/full');
  const errors: Error[] = [];
  const event = { event: 'received' as const, id: 'Q1', sender: 'a@example.org', recipients: ['b@example.test'], size: 10 };
  log.log(event, Date.now(), (e) => errors.push(e));
  await log.flush();
  log.log({ ...event, id: 'Q2' }, Date.now(), (e) => errors.push(e));
  await log.close();
  assert.deepEqual(errors.map((e) => (e as NodeJS.ErrnoException).code), ['ENOSPC', 'ENOSPC']);
});
