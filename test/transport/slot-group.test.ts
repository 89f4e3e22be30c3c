/**
 * Group commit of received mail (`slot-group.ts`): records committed while a slot sync runs share the
 * next slot and its one sync; a slot holding a group is emptied only once every record in it is taken
 * up, in steady state and after a restart; a group whose sync fails answers every member 452 and frees
 * only its own slot. The failing sync is a real `fdatasync` of the engine's slot file whose result is
 * replaced, slowly, by EIO: `fs.fdatasync` is wrapped before the engine's modules load (they take it
 * once, at load).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, mock, test } from 'node:test';
import type { TransportEngine } from '../../src/transport/engine.js';

/** While set, a slot's fdatasync runs, then fails with EIO after this long (so that others gather behind it). */
let failSlotSyncsAfterMs: number | undefined;
/**
 * While set, a slot's fdatasync runs, then succeeds after this long: arrivals gather behind it whatever
 * the machine's speed, so the size of a group does not depend on how fast this disk syncs.
 */
let slowSlotSyncsMs: number | undefined;
/** Slot syncs made to fail, by file. */
const failedSyncs: string[] = [];
const realFdatasync = fs.fdatasync;
mock.method(fs, 'fdatasync', (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
  const file = fs.readlinkSync(`/proc/self/fd/${fd}`);
  if (!file.includes(`${path.sep}incoming${path.sep}`)) return realFdatasync(fd, cb);
  const slow = slowSlotSyncsMs;
  if (slow !== undefined) return realFdatasync(fd, (err) => setTimeout(() => cb(err), slow));
  if (failSlotSyncsAfterMs === undefined) return realFdatasync(fd, cb);
  const delay = failSlotSyncsAfterMs;
  failedSyncs.push(file);
  realFdatasync(fd, () => setTimeout(() => cb(Object.assign(new Error(`EIO: i/o error, fdatasync '${file}'`), { code: 'EIO', errno: -5 })), delay));
});
const { mailboxDir } = await import('../../src/transport/maildir.js');
const { engineRules, message, queuedId, sendMessage, startEngine, waitFor } = await import('./engine-harness.js');
const { slotFiles, slotOf, writeOldLayout } = await import('./slot-files.js');
const { SlotPool } = await import('../../src/transport/slot-pool.js');
const { decodeSlotRecords, encodeSlotRecord } = await import('../../src/transport/slot-record.js');

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-slotgroup-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function aliceSubjects(engine: TransportEngine): Promise<string[]> {
  const box = path.join(mailboxDir(engine.paths.mailboxDir, 'alice@example.test'), 'new');
  const names = await readdir(box).catch(() => []);
  return Promise.all(names.map(async (n) => /^Subject: (.*)$/m.exec(await readFile(path.join(box, n), 'latin1'))?.[1] ?? '?'));
}

/** `clients` sessions at once, each sending `each` messages to alice one after another; every last reply. */
async function sendConcurrently(engine: TransportEngine, clients: number, each: number, prefix: string): Promise<{ code: number; text: string }[]> {
  const replies = await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const mine = [];
      for (let i = 0; i < each; i++) {
        const r = await sendMessage(engine.address.port, { from: 'sender@remote.test', to: ['alice@example.test'], content: message(`${prefix} ${c}.${i}`) });
        mine.push(r.at(-1)!);
      }
      return mine;
    }),
  );
  return replies.flat();
}

async function deliverAll(engine: TransportEngine, n: number): Promise<void> {
  await engine.manager.setFrozen('pre-submission', false);
  await engine.manager.runDue();
  await waitFor(async () => (await aliceSubjects(engine)).length >= n && engine.store.all().length === 0, 20_000, `${n} messages delivered`);
}

test('concurrent arrivals share slots; a slot is emptied only once every record in it is taken up, running and after a restart; each message delivered once', async () => {
  const rules = engineRules(path.join(dir, 'shared'));
  const first = await startEngine(rules);
  const queueDir = first.paths.queueDir;
  let group: Awaited<ReturnType<typeof slotFiles>>[number];
  try {
    await first.manager.setFrozen('pre-submission', true);
    slowSlotSyncsMs = 40;
    let replies: { code: number; text: string }[];
    try {
      replies = await sendConcurrently(first, 8, 6, 'group');
    } finally {
      slowSlotSyncsMs = undefined;
    }
    assert.deepEqual(replies.map((r) => r.code), Array(48).fill(250));
    const held = (await slotFiles(queueDir)).filter((s) => s.records.length > 0);
    assert.equal(held.reduce((n, s) => n + s.records.length, 0), 48, 'every record in a slot, once');
    assert.ok(held.length < 48, `48 records in ${held.length} slots`);
    group = held.reduce((a, b) => (b.records.length > a.records.length ? b : a));
    assert.ok(group.records.length >= 3, `a slot holds a group (${group.records.length} records)`);

    // A record of the group written out as an envelope (a changed record) leaves the slot as it is.
    const [firstRecord, ...rest] = group.records;
    await first.store.update({ ...firstRecord!.message, attempts: 1 });
    assert.ok((await readFile(group.file)).equals(group.bytes), 'the slot keeps its bytes while other records are in it');
    assert.ok(rest.length > 0);
  } finally {
    await first.close();
  }

  // After a restart as well: the first record is in content/ (newer), the rest still in the slot; and one
  // more record of it written out as an envelope while its slot was not freed (a crash between the two).
  const last = group.records.at(-1)!;
  await writeOldLayout(queueDir, last.message.envelope.id, 'content', true);
  const again = await startEngine(rules);
  try {
    assert.equal(again.store.all().length, 48, 'every record taken up once: from its slot or from its envelope');
    assert.ok((await readFile(group.file)).equals(group.bytes), 'the slot kept, records in it still held');
    for (const r of group.records.slice(1, -1)) assert.ok((await again.store.heldContent(r.message.contentId))?.equals(r.content), `${r.message.envelope.id} read from its offset in the slot`);
    await deliverAll(again, 48);
    const subjects = await aliceSubjects(again);
    assert.equal(subjects.length, 48);
    assert.equal(new Set(subjects).size, 48, 'each delivered once');
    assert.deepEqual((await slotFiles(queueDir)).filter((s) => s.bytes.length > 0), [], 'every slot empty again');
  } finally {
    await again.close();
  }
});

test('a group whose sync fails answers every member 452 4.3.1, none 250, and frees only its own slot; the held records are delivered, the failed ones never', async () => {
  const engine = await startEngine(engineRules(path.join(dir, 'failing')));
  const queueDir = engine.paths.queueDir;
  try {
    await engine.manager.setFrozen('pre-submission', true);
    const kept = await sendConcurrently(engine, 3, 1, 'kept');
    assert.deepEqual(kept.map((r) => r.code), [250, 250, 250]);
    const before = (await slotFiles(queueDir)).filter((s) => s.records.length > 0);

    failSlotSyncsAfterMs = 1500;
    let failing: { code: number; text: string }[];
    try {
      failing = await sendConcurrently(engine, 4, 1, 'failed');
    } finally {
      failSlotSyncsAfterMs = undefined;
    }
    assert.deepEqual(failing.map((r) => `${r.code} ${r.text.split(' ')[0]}`), Array(4).fill('452 4.3.1'), 'every member told 452 4.3.1');
    assert.ok(failedSyncs.length < 4, `4 messages in ${failedSyncs.length} failed syncs: a group shared one`);

    const now = await slotFiles(queueDir);
    for (const slot of before) assert.ok(now.find((s) => s.file === slot.file)?.bytes.equals(slot.bytes), `${path.basename(slot.file)} still holds its records`);
    assert.equal(now.filter((s) => s.bytes.length > 0).length, before.length, 'the failed groups left nothing in their slots');
    assert.equal(engine.store.all().length, 3, 'no failed message queued');

    const [after] = await sendConcurrently(engine, 1, 1, 'after');
    assert.equal(after?.code, 250);
    assert.ok((await slotOf(queueDir, queuedId(after))).record, 'a slot handed out again takes mail');
    await deliverAll(engine, 4);
    assert.deepEqual((await aliceSubjects(engine)).sort(), ['after 0.0', 'kept 0.0', 'kept 1.0', 'kept 2.0']);
  } finally {
    await engine.close();
  }
});

test('a group is bounded: at most 64 records and 1 MiB in a slot; every record lands whole where its commit said', async () => {
  const pool = new SlotPool(path.join(dir, 'bounded', 'incoming'), true);
  await pool.open();
  try {
    // 100 small records (64 a group at most), then 40 of 60 KB (1 MiB a group at most), all at once.
    const records = [
      ...Array.from({ length: 100 }, (_, i) => encodeSlotRecord(Buffer.alloc(500, `small ${i} `), Buffer.from(`{"n":${i}}`))),
      ...Array.from({ length: 40 }, (_, i) => encodeSlotRecord(Buffer.alloc(60_000, `large ${i} `), Buffer.from(`{"n":${100 + i}}`))),
    ];
    const places = await Promise.all(records.map((r) => pool.groups.commit(r)));
    const files = new Map<string, Buffer>();
    for (const p of places) if (!files.has(p.file)) files.set(p.file, await readFile(p.file));
    for (const [file, bytes] of files) {
      const held = decodeSlotRecords(bytes);
      assert.ok(held.length <= 64, `${path.basename(file)} holds ${held.length} records`);
      assert.ok(held.length === 1 || bytes.length <= 1024 * 1024, `${path.basename(file)} holds ${bytes.length} bytes`);
      const mine = places.filter((p) => p.file === file);
      assert.equal(mine.length, held.length, 'a place for each record in the slot');
      assert.ok(mine.every((p) => p.records === held.length), 'each place counts the records in its slot');
    }
    for (const [i, p] of places.entries()) {
      const record = records[i]!;
      assert.ok(files.get(p.file)!.subarray(p.offset, p.offset + record.length).equals(record), `record ${i} whole at its offset`);
      assert.equal(decodeSlotRecords(files.get(p.file)!).find((r) => r.offset === p.offset)?.envelope.toString(), `{"n":${i}}`);
    }
    assert.ok(files.size < records.length / 4, `${records.length} records in ${files.size} slots`);
  } finally {
    await pool.close();
  }
});
