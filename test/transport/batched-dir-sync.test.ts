/**
 * The batched directory sync the local deliveries share (src/storage/batched-dir-sync.ts), on a real
 * directory with timers the test holds: nobody is released before the batch's sync, the window,
 * a full batch and `flush` each start it, and a failed sync reaches every caller of its batch.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BatchedDirSync } from '../../src/storage/batched-dir-sync.js';
import { ManualTimers } from './engine-harness.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-batched-sync-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Whether `p` has settled once the I/O a sync needs (open, fsync, close) had several turns to finish. */
async function settledAfterIo(p: Promise<void>): Promise<boolean> {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 20 && !settled; i++) await new Promise((r) => setTimeout(r, 5));
  return settled;
}

test('callers of one directory wait for one sync, started when the window ends', async () => {
  const timers = new ManualTimers();
  const syncs = new BatchedDirSync(timers, 100, 64);
  const waits = [syncs.after(dir), syncs.after(dir), syncs.after(dir)];
  assert.equal(timers.pending, 1, 'one window for the batch, not one per caller');
  assert.equal(await settledAfterIo(Promise.race(waits)), false, 'nobody is released before the sync');
  timers.fire();
  await Promise.all(waits);
  // A caller after the batch's sync started joins a new batch: its entry may have missed that sync.
  const late = syncs.after(dir);
  assert.equal(timers.pending, 1);
  assert.equal(await settledAfterIo(late), false);
  timers.fire();
  await late;
});

test('a full batch is synced at once, its window cleared; flush syncs what waits and leaves nothing pending', async () => {
  const timers = new ManualTimers();
  const syncs = new BatchedDirSync(timers, 100, 3);
  const other = path.join(dir, 'other');
  await mkdir(other);
  const full = [syncs.after(dir), syncs.after(dir), syncs.after(dir)];
  await Promise.all(full);
  assert.equal(timers.pending, 0, 'the full batch cleared its window');
  const waiting = [syncs.after(dir), syncs.after(other)];
  assert.equal(timers.pending, 2, 'one window per directory');
  await syncs.flush();
  await Promise.all(waiting);
  assert.equal(timers.pending, 0);
  await syncs.flush();
});

test('a sync that fails rejects every caller of its batch with its error', async () => {
  const timers = new ManualTimers();
  const syncs = new BatchedDirSync(timers, 100, 64);
  const gone = path.join(dir, 'gone');
  const waits = [syncs.after(gone), syncs.after(gone)];
  timers.fire();
  for (const w of waits) await assert.rejects(w, { code: 'ENOENT' });
});
