/**
 * Reading slot files at start: the streamed decoder agrees with the whole-buffer rule (property, over
 * real files), and an engine started over a slot directory holding far more than it should keep in
 * memory starts without reading the slots whole, then delivers every message once.
 */
import assert from 'node:assert/strict';
import { open, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { mailboxDir } from '../../src/transport/maildir.js';
import { newQueueId } from '../../src/transport/queue-store.js';
import { decodeSlotRecords, encodeSlotRecord, readSlotRecords, recordTail, TRAILER_BYTES } from '../../src/transport/slot-record.js';
import { engineRules, message, queuedId, sendMessage, startEngine, waitFor } from './engine-harness.js';
import { slotFiles, slotOf } from './slot-files.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-slotread-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Content of any size up to a few 64 KiB chunks, cheap to make: a short pattern repeated. */
const content = fc
  .tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.oneof(fc.nat({ max: 600 }), fc.integer({ min: 60 * 1024, max: 200 * 1024 })))
  .map(([pattern, length]) => Buffer.alloc(length, Buffer.from(pattern)));
const envelope = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));

/** Bytes a slot file may hold after a crash or by accident. */
const slotBytes = fc.oneof(
  // A record or a group of them back to back, whole, cut short at any byte, or with one byte changed
  // (in a large content only the CRC notices).
  fc.tuple(fc.array(fc.tuple(content, envelope), { minLength: 1, maxLength: 3 }), fc.constantFrom('whole', 'cut', 'changed'), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([records, how, at, flip]) => {
    const group = Buffer.concat(records.map(([c, e]) => encodeSlotRecord(c, e)));
    if (how === 'whole') return group;
    if (how === 'cut') return group.subarray(0, at % group.length);
    const changed = Buffer.from(group);
    changed[at % group.length] = (changed[at % group.length] ?? 0) ^ flip;
    return changed;
  }),
  // A foreign trailer: lengths that add up, magic, any CRC.
  fc.tuple(content, envelope, fc.nat()).map(([c, e, crc]) => {
    const tail = recordTail(0, c.length, e);
    tail.writeUInt32BE(crc, tail.length - TRAILER_BYTES + 12);
    return Buffer.concat([c, tail]);
  }),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
);

test('a slot file read in chunks decodes exactly as its bytes do in memory: the same records, at the same offsets, with the same envelopes and content lengths', async () => {
  const file = path.join(dir, 'property-slot');
  let records = 0;
  let groups = 0;
  await fc.assert(
    fc.asyncProperty(slotBytes, async (bytes) => {
      await writeFile(file, bytes);
      const streamed = await readSlotRecords(file);
      const whole = decodeSlotRecords(bytes);
      records += whole.length;
      if (whole.length > 1) groups++;
      assert.deepEqual(
        streamed.map((r) => ({ offset: r.offset, contentLength: r.contentLength, envelope: r.envelope.toString('hex') })),
        whole.map((r) => ({ offset: r.offset, contentLength: r.content.length, envelope: r.envelope.toString('hex') })),
      );
    }),
    { numRuns: 150 },
  );
  assert.ok(records > 10 && groups > 5, `whole records (${records}) and groups of them (${groups}) were among the cases`);
});

/** A body of about 3 MiB whose last line is unique, so a whole delivery can be told from a cut one. */
const BIG_BODY = Buffer.from(`${Array.from({ length: 3 * 1024 * 16 }, (_, i) => `line ${i} ${'z'.repeat(54)}\r\n`).join('')}the end\r\n`);
const SLOTS = 40;

test(`an engine started over ${SLOTS} slots of 3 MiB each (a frozen queue) keeps far less than their bytes in memory, then delivers each message once`, async (t) => {
  const rules = engineRules(path.join(dir, 'many-big'));
  const first = await startEngine(rules);
  let template: Awaited<ReturnType<typeof slotOf>>;
  try {
    await first.manager.setFrozen('pre-submission', true);
    const replies = await sendMessage(first.address.port, { from: 'sender@remote.test', to: ['alice@example.test'], content: message('template') });
    template = await slotOf(first.paths.queueDir, queuedId(replies.at(-1)!));
  } finally {
    await first.close();
  }
  // Records as the engine writes them, the template's envelope under new ids, into the empty slots.
  const templateId = template.record.message.envelope.id;
  const empty = (await slotFiles(first.paths.queueDir)).filter((s) => s.bytes.length === 0).slice(0, SLOTS);
  assert.equal(empty.length, SLOTS);
  for (const [i, slot] of empty.entries()) {
    const id = newQueueId(Date.now() + i + 1);
    const head = Buffer.from(message(`big ${i}`));
    const env = Buffer.from(JSON.stringify(template.record.message).replaceAll(templateId, id));
    const fh = await open(slot.file, 'w');
    try {
      await fh.writev([head, BIG_BODY, recordTail(crc32(BIG_BODY, crc32(head)), head.length + BIG_BODY.length, env)]);
    } finally {
      await fh.close();
    }
  }

  const before = process.memoryUsage().arrayBuffers;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 1);
  const second = await startEngine(rules).finally(() => clearInterval(sampler));
  try {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    const slotBytesTotal = SLOTS * BIG_BODY.length;
    t.diagnostic(`array buffers grew by ${peak - before} bytes at start, for ${slotBytesTotal} bytes in slots`);
    assert.ok(peak - before < slotBytesTotal / 8, `memory grew by ${peak - before} bytes at start, for ${slotBytesTotal} bytes in slots`);
    assert.equal(second.store.all().length, SLOTS + 1, 'every record taken up from its slot');

    await second.manager.setFrozen('pre-submission', false);
    await second.manager.runDue();
    await waitFor(() => second.store.all().length === 0, 120_000, 'everything delivered');
    const box = path.join(mailboxDir(second.paths.mailboxDir, 'alice@example.test'), 'new');
    const subjects: string[] = [];
    for (const name of await readdir(box)) {
      const fh = await open(path.join(box, name), 'r');
      try {
        const { size } = await stat(path.join(box, name));
        const head = Buffer.alloc(Math.min(size, 2048));
        await fh.read(head, 0, head.length, 0);
        const subject = /^Subject: (.*)$/m.exec(head.toString('latin1'))?.[1] ?? '?';
        subjects.push(subject);
        if (subject === 'template') continue;
        const end = Buffer.alloc(9);
        await fh.read(end, 0, 9, size - 9);
        assert.ok(size > BIG_BODY.length * 0.9 && end.toString('latin1') === '\nthe end\n', `${subject} delivered whole (${size} bytes)`);
      } finally {
        await fh.close();
      }
    }
    const expected = ['template', ...Array.from({ length: SLOTS }, (_, i) => `big ${i}`)];
    assert.deepEqual(subjects.sort(), expected.sort(), 'each message delivered once');
    assert.equal((await slotFiles(second.paths.queueDir)).filter((s) => s.bytes.length > 0).length, 0, 'every slot empty again');
  } finally {
    await second.close();
  }
});
