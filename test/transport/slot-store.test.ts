/**
 * Received mail in slot files (`incoming/`): the record framing (property), torn and foreign slots
 * after a crash, stores written by the versions before slots, and slots reused rather than made anew.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type { TransportEngine } from '../../src/transport/engine.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { decodeSlotRecords, encodeSlotRecord, TRAILER_BYTES } from '../../src/transport/slot-record.js';
import { engineRules, message, queuedId, sendMessage, startEngine, waitFor } from './engine-harness.js';
import { slotFiles, slotOf, writeOldLayout } from './slot-files.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-slots-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('slot record framing: records encoded back to back decode to the same bytes at their offsets; a cut or a changed byte in record j leaves exactly the records after it, never a part of one', () => {
  const record = fc.tuple(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 200 }));
  fc.assert(
    fc.property(fc.array(record, { minLength: 1, maxLength: 4 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (records, at, flip) => {
      const encoded = records.map(([c, e]) => encodeSlotRecord(Buffer.from(c), Buffer.from(e)));
      const ends = encoded.map((_, i) => encoded.slice(0, i + 1).reduce((n, r) => n + r.length, 0));
      const slot = Buffer.concat(encoded);
      const decoded = decodeSlotRecords(slot);
      assert.equal(decoded.length, records.length, 'every record of a whole group decodes');
      for (const [i, [c, e]] of records.entries()) {
        assert.equal(decoded[i]!.offset, ends[i]! - encoded[i]!.length);
        assert.deepEqual(new Uint8Array(decoded[i]!.content), c);
        assert.deepEqual(new Uint8Array(decoded[i]!.envelope), e);
      }
      const pos = at % slot.length;
      // The record the byte falls in: a cut there (a torn group) or a change there loses it and what precedes it.
      const j = ends.findIndex((end) => pos < end);
      const cut = decodeSlotRecords(slot.subarray(0, pos));
      const boundary = ends.includes(pos);
      assert.equal(cut.length, boundary ? ends.indexOf(pos) + 1 : 0, `cut at ${pos} of ${slot.length}`);
      const changed = Buffer.from(slot);
      changed[pos] = (changed[pos] ?? 0) ^ flip;
      assert.deepEqual(
        decodeSlotRecords(changed).map((r) => r.offset),
        decoded.slice(j + 1).map((r) => r.offset),
        `byte ${pos} of ${slot.length} changed (record ${j})`,
      );
    }),
    { numRuns: 300 },
  );
  assert.deepEqual(decodeSlotRecords(Buffer.alloc(0)), [], 'an empty slot holds nothing');
  assert.deepEqual(decodeSlotRecords(Buffer.alloc(TRAILER_BYTES * 3)), [], 'zeros (a size extended, blocks never written) hold nothing');
});

/** Subjects of the messages in alice's Maildir. */
async function aliceSubjects(engine: TransportEngine): Promise<string[]> {
  const box = path.join(mailboxDir(engine.paths.mailboxDir, 'alice@example.test'), 'new');
  const names = await readdir(box).catch(() => []);
  return Promise.all(names.map(async (n) => /^Subject: (.*)$/m.exec(await readFile(path.join(box, n), 'latin1'))?.[1] ?? '?'));
}

/** Sends `subjects` to alice, one transaction each; their queue ids. */
async function sendAll(engine: TransportEngine, subjects: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const s of subjects) ids.push(queuedId((await sendMessage(engine.address.port, { from: 'sender@remote.test', to: ['alice@example.test'], content: message(s) })).at(-1)!));
  return ids;
}

/** Lets the queue run and waits until alice has `n` messages and the queue is empty. */
async function deliverAll(engine: TransportEngine, n: number): Promise<void> {
  await engine.manager.setFrozen('pre-submission', false);
  await engine.manager.runDue();
  await waitFor(async () => (await aliceSubjects(engine)).length >= n && engine.store.all().length === 0, 10_000, `${n} messages delivered`);
}

test('torn and foreign slots are free after a restart: only complete records are delivered, each once', async () => {
  const rules = engineRules(path.join(dir, 'torn'));
  const first = await startEngine(rules);
  let queueDir: string;
  try {
    await first.manager.setFrozen('pre-submission', true);
    await sendAll(first, ['kept one', 'kept two', 'kept three']);
    queueDir = first.paths.queueDir;
  } finally {
    await first.close();
  }
  const slots = await slotFiles(queueDir);
  const held = slots.filter((s) => s.record);
  const free = slots.filter((s) => s.bytes.length === 0);
  assert.equal(held.length, 3);
  const whole = held[0]!.bytes;
  const badCrc = Buffer.from(held[1]!.bytes);
  badCrc[10] = (badCrc[10] ?? 0) ^ 0x20;
  const torn = [
    Buffer.from('garbage, never a record\r\n'),
    whole.subarray(0, whole.length - 1),
    whole.subarray(0, whole.length - TRAILER_BYTES - 5),
    badCrc,
    // A write whose size reached the disk before its blocks did.
    Buffer.alloc(whole.length),
  ];
  for (const [i, bytes] of torn.entries()) await writeFile(free[i]!.file, bytes);

  const second = await startEngine(rules);
  try {
    assert.equal(second.store.all().length, 3, 'the three complete records, nothing from the torn slots');
    for (const [i] of torn.entries()) assert.equal((await readFile(free[i]!.file)).length, 0, `torn slot ${i} emptied for reuse`);
    await deliverAll(second, 3);
    assert.deepEqual((await aliceSubjects(second)).sort(), ['kept one', 'kept three', 'kept two']);
    assert.equal((await slotFiles(queueDir)).filter((s) => s.bytes.length > 0).length, 0, 'every slot empty again');
  } finally {
    await second.close();
  }
});

test("a store written before slots (content/<id>.eml + content/<id>.json) opens and delivers; a record both in a slot and in an envelope is delivered once", async () => {
  const rules = engineRules(path.join(dir, 'old'));
  const first = await startEngine(rules);
  let ids: string[];
  try {
    await first.manager.setFrozen('pre-submission', true);
    ids = await sendAll(first, ['old layout', 'written out, slot not yet freed']);
  } finally {
    await first.close();
  }
  const queueDir = first.paths.queueDir;
  await writeOldLayout(queueDir, ids[0]!, 'content');
  // A crash after a record was written out as an envelope, before its slot was emptied.
  await writeOldLayout(queueDir, ids[1]!, 'content', true);
  assert.ok((await slotOf(queueDir, ids[1]!)).record);

  const second = await startEngine(rules);
  try {
    assert.deepEqual(second.store.all().map((s) => s.queue), ['pre-submission', 'pre-submission']);
    await deliverAll(second, 2);
    assert.deepEqual((await aliceSubjects(second)).sort(), ['old layout', 'written out, slot not yet freed']);
    assert.deepEqual(await readdir(path.join(queueDir, 'content')), [], 'content and envelopes gone once delivered');
    assert.equal((await slotFiles(queueDir)).filter((s) => s.bytes.length > 0).length, 0, 'the stale slot emptied');
  } finally {
    await second.close();
  }
});

test('slots are reused: mail delivered one after another makes no new slot files; more records held than free slots makes one more batch', async () => {
  const engine = await startEngine(engineRules(path.join(dir, 'reuse')));
  try {
    const queueDir = engine.paths.queueDir;
    const made = (await slotFiles(queueDir)).length;
    assert.equal(made, 64, 'one batch made at start');
    for (let i = 0; i < 80; i++) {
      await sendAll(engine, [`one by one ${i}`]);
      await waitFor(() => engine.store.all().length === 0, 10_000, `message ${i} delivered`);
    }
    assert.equal((await aliceSubjects(engine)).length, 80);
    assert.equal((await slotFiles(queueDir)).length, made, 'no slot file made for 80 messages');

    await engine.manager.setFrozen('pre-submission', true);
    // One after another, so each is committed alone, in a slot of its own (concurrent ones would share: slot-group.test.ts).
    await sendAll(engine, Array.from({ length: 72 }, (_, i) => `held ${i}`));
    assert.equal(engine.store.all().length, 72);
    assert.equal((await slotFiles(queueDir)).length, 2 * made, 'one more batch for the 72 held');
    await deliverAll(engine, 152);
    assert.equal(new Set(await aliceSubjects(engine)).size, 152, 'each delivered once');
  } finally {
    await engine.close();
  }
});

test('a message too big to hold in memory (300 KiB) is copied out of its slot to a content file and delivered whole, while running and after a restart', async () => {
  const rules = engineRules(path.join(dir, 'big'));
  const body = Array.from({ length: 6000 }, (_, i) => `line ${i} ${'x'.repeat(40)}\r\n`).join('');
  const send = async (engine: TransportEngine, subject: string): Promise<void> => {
    const replies = await sendMessage(engine.address.port, { from: 'sender@remote.test', to: ['alice@example.test'], content: `${message(subject)}${body}` });
    assert.equal(replies.at(-1)?.code, 250);
  };
  const first = await startEngine(rules);
  try {
    await send(first, 'big while running');
    await waitFor(async () => (await aliceSubjects(first)).length === 1 && first.store.all().length === 0, 10_000, 'the first delivered');
    await first.manager.setFrozen('pre-submission', true);
    await send(first, 'big after restart');
    const [slot] = (await slotFiles(first.paths.queueDir)).filter((s) => s.record);
    assert.ok(slot && slot.record!.content.length > 300_000, 'the whole content is in the slot');
  } finally {
    await first.close();
  }
  const second = await startEngine(rules);
  try {
    await deliverAll(second, 2);
  } finally {
    await second.close();
  }
  const lf = body.replace(/\r\n/g, '\n');
  const box = path.join(mailboxDir(first.paths.mailboxDir, 'alice@example.test'), 'new');
  const names = await readdir(box);
  assert.equal(names.length, 2);
  for (const name of names) assert.ok((await readFile(path.join(box, name), 'latin1')).endsWith(lf), `${name} holds the whole body`);
  assert.deepEqual(await readdir(path.join(first.paths.queueDir, 'content')), [], 'the copies out are gone with their messages');
});

test('a slot reused through its open descriptor holds only its new record: a short one after a long one (written as it came) decodes alone, and is delivered whole after a restart', async () => {
  const rules = engineRules(path.join(dir, 'reuse-shorter'));
  // Over the 64 KiB a slot writer holds back, so its content went out in several writes.
  const long = Array.from({ length: 3000 }, (_, i) => `long line ${i} ${'y'.repeat(40)}\r\n`).join('');
  const first = await startEngine(rules);
  let longSlot: string | undefined;
  try {
    await first.manager.setFrozen('pre-submission', true);
    const replies = await sendMessage(first.address.port, { from: 'sender@remote.test', to: ['alice@example.test'], content: `${message('long')}${long}` });
    longSlot = (await slotOf(first.paths.queueDir, queuedId(replies.at(-1)!))).file;
    await deliverAll(first, 1);
    await first.manager.setFrozen('pre-submission', true);
    const [id] = await sendAll(first, ['short after long']);
    const slot = await slotOf(first.paths.queueDir, id!);
    assert.equal(slot.file, longSlot, 'the emptied slot is the one handed out next');
    assert.match(slot.record.content.toString('latin1'), /Subject: short after long/);
    assert.ok(slot.bytes.length < 2048, `the slot holds the short record only (${slot.bytes.length} bytes)`);
  } finally {
    await first.close();
  }
  const second = await startEngine(rules);
  try {
    await deliverAll(second, 2);
  } finally {
    await second.close();
  }
  assert.deepEqual((await aliceSubjects(second)).sort(), ['long', 'short after long']);
});

test('a slot whose emptying was lost (a power failure after delivery) brings its record back: it is taken up again and not delivered twice', async () => {
  const rules = engineRules(path.join(dir, 'lost-truncation'));
  const first = await startEngine(rules);
  let slot: Awaited<ReturnType<typeof slotOf>>;
  try {
    await first.manager.setFrozen('pre-submission', true);
    const [id] = await sendAll(first, ['delivered before the power failure']);
    slot = await slotOf(first.paths.queueDir, id!);
    await deliverAll(first, 1);
    assert.equal((await readFile(slot.file)).length, 0, 'emptied once delivered');
  } finally {
    await first.close();
  }
  // The truncation was never synced: after a power failure the file may hold the record again.
  await writeFile(slot.file, slot.bytes);
  const second = await startEngine(rules);
  try {
    assert.equal(second.store.all().length, 1, 'the record is back');
    await second.manager.runDue();
    await waitFor(() => second.store.all().length === 0, 10_000, 'the record taken up again');
    assert.deepEqual(await aliceSubjects(second), ['delivered before the power failure'], 'found in the Maildir, not delivered again');
  } finally {
    await second.close();
  }
});

test('a crash after a message was split into queued parts, before its slot was emptied: the split is redone without new parts, each copy delivered once', async () => {
  const rules = engineRules(path.join(dir, 'split-crash'));
  const first = await startEngine(rules);
  let id: string;
  let slot: Awaited<ReturnType<typeof slotOf>>;
  try {
    await first.manager.setFrozen('pre-submission', true);
    await first.manager.setFrozen('local-delivery', true);
    // Two mailboxes: one local part with two copies, queued (not delivered on the way).
    const replies = await sendMessage(first.address.port, { from: 'sender@remote.test', to: ['alice@example.test', 'bob@example.test'], content: message('two copies') });
    id = queuedId(replies.at(-1)!);
    slot = await slotOf(first.paths.queueDir, id);
    await first.manager.setFrozen('pre-submission', false);
    await first.manager.runDue();
    await waitFor(() => first.store.get(id) === undefined, 10_000, 'the split');
    assert.deepEqual(first.store.all().map((s) => `${s.queue} ${s.message.envelope.id}`), [`local-delivery ${id}-1`]);
    assert.deepEqual(await readdir(path.join(first.paths.queueDir, 'content')), [`${id}.eml`], 'the content copied out for the part');
  } finally {
    await first.close();
  }
  await writeFile(slot.file, slot.bytes);

  const second = await startEngine(rules);
  try {
    assert.deepEqual(second.store.all().map((s) => s.queue).sort(), ['local-delivery', 'pre-submission']);
    await second.manager.setFrozen('local-delivery', false);
    await second.manager.runDue();
    await waitFor(() => second.store.all().length === 0, 10_000, 'everything delivered');
    for (const mailbox of ['alice@example.test', 'bob@example.test']) {
      const box = path.join(mailboxDir(second.paths.mailboxDir, mailbox), 'new');
      assert.equal((await readdir(box)).length, 1, `one copy for ${mailbox}`);
    }
    assert.deepEqual(await readdir(path.join(second.paths.queueDir, 'content')), []);
    assert.equal((await slotFiles(second.paths.queueDir)).filter((s) => s.bytes.length > 0).length, 0);
  } finally {
    await second.close();
  }
});
