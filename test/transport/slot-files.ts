/** Reading a stopped engine's slot files (`incoming/`) and writing the layouts earlier versions left, for the store tests. */
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { QueuedMessage } from '../../src/transport/queue-store.js';
import { decodeSlotRecords } from '../../src/transport/slot-record.js';

/** A slot's record, decoded. */
export interface HeldRecord {
  offset: number;
  message: QueuedMessage;
  content: Buffer;
}

/** A slot file and what it holds: its decoded records (none when empty or torn), and the first of them. */
export interface SlotFile {
  file: string;
  bytes: Buffer;
  records: HeldRecord[];
  record?: HeldRecord;
}

/** Every slot file of a queue directory, in numeric order. */
export async function slotFiles(queueDir: string): Promise<SlotFile[]> {
  const dir = path.join(queueDir, 'incoming');
  const names = (await readdir(dir)).sort((a, b) => Number(a) - Number(b));
  return Promise.all(
    names.map(async (name) => {
      const file = path.join(dir, name);
      const bytes = await readFile(file);
      const records = decodeSlotRecords(bytes).map((r) => ({ offset: r.offset, message: JSON.parse(r.envelope.toString('utf8')) as QueuedMessage, content: r.content }));
      return { file, bytes, records, ...(records[0] ? { record: records[0] } : {}) };
    }),
  );
}

/** The slot holding record `id`, with that record as its `record`. */
export async function slotOf(queueDir: string, id: string): Promise<SlotFile & Required<Pick<SlotFile, 'record'>>> {
  for (const slot of await slotFiles(queueDir)) {
    const record = slot.records.find((r) => r.message.envelope.id === id);
    if (record) return { ...slot, record };
  }
  throw new Error(`no slot holds ${id}`);
}

/**
 * Writes record `id` out of its slot as an earlier version kept it: `content/<id>.eml` and its envelope
 * in `envelopeDir` (`content` for the layout before slots, `pre-submission` for the one before that).
 * The slot is emptied unless `keepSlot` (a crash between writing the envelope and freeing the slot).
 */
export async function writeOldLayout(queueDir: string, id: string, envelopeDir: 'content' | 'pre-submission', keepSlot = false): Promise<void> {
  const slot = await slotOf(queueDir, id);
  if (!keepSlot && slot.records.length !== 1) throw new Error(`the slot of ${id} holds ${slot.records.length} records; an old layout had one file per message`);
  await mkdir(path.join(queueDir, envelopeDir), { recursive: true });
  await writeFile(path.join(queueDir, 'content', `${id}.eml`), slot.record.content);
  await writeFile(path.join(queueDir, envelopeDir, `${id}.json`), JSON.stringify(slot.record.message));
  if (!keepSlot) await truncate(slot.file, 0);
}
