/**
 * Delivery at receipt whose sync of `new/` fails after the Maildir file was renamed into it: the client
 * still gets 250 (the message is committed to its slot, as before delivery at receipt), and the queue's
 * delivery finds the file by its part mark instead of delivering it twice. The failing sync is a real
 * `fsync` of the Maildir's `new/` whose result is replaced by EIO: `fs.fsync` is wrapped before the
 * engine's modules load (they take it once, at load).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, mock, test } from 'node:test';

/** Syncs of a `new/` directory still to be failed. */
let failNewSyncs = 0;
const realFsync = fs.fsync;
mock.method(fs, 'fsync', (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
  if (failNewSyncs === 0 || !fs.readlinkSync(`/proc/self/fd/${fd}`).endsWith(`${path.sep}new`)) return realFsync(fd, cb);
  failNewSyncs--;
  realFsync(fd, () => cb(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5 })));
});
const { searchTrackingLog } = await import('../../src/transport/tracking-log.js');
const { engineRules, maildirFiles, ManualTimers, message, queuedId, sendMessage, startEngine } = await import('./engine-harness.js');

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-receipt-fallback-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the sync of new/ fails after the rename: 250 all the same, the message queued, and its delivery from the queue finds the file: one copy, one "delivered" line', async () => {
  const engine = await startEngine(engineRules(path.join(dir, 'failed-sync'), {}, { fsync: true }), { timers: new ManualTimers() });
  try {
    failNewSyncs = 1;
    const id = queuedId((await sendMessage(engine.address.port, { from: 'sender@remote.test', to: ['alice@example.test'], content: message('Sync fails') })).at(-1)!);
    assert.equal(failNewSyncs, 0, 'the sync of new/ at receipt was the one failed');
    assert.ok(engine.store.all().some((s) => s.message.rootId === id), 'queued at the 250');
    await engine.manager.runDue();
    assert.deepEqual(engine.store.all(), [], 'delivered from the queue');
    const files = await maildirFiles(engine.paths.mailboxDir, 'alice@example.test');
    assert.deepEqual(files.map((f) => f.includes(`_Q${id}-1.`)), [true], 'one copy: the file left at receipt');
    await engine.tracking.flush();
    const events = (await searchTrackingLog(engine.paths.trackingLog, { id })).map((e) => e.event);
    assert.deepEqual(events, ['received', 'submitted', 'delivered']);
  } finally {
    failNewSyncs = 0;
    await engine.close();
  }
});
