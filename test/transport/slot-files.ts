/** Reading a stopped engine's slot files (`incoming/`) and writing the layouts earlier versions left, for the store tests. */
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { QueuedMessage } from '../../src/transport/queue-store.js';
import { decodeSlotRecord } from '../../src/transport/slot-record.js';

/** A slot file and what it holds: a decoded record, or nothing (empty or not a complete record). */
export interface SlotFile {
  file: string;
  bytes: Buffer;
  record?: { message: QueuedMessage; content: Buffer };
}

/** Every slot file of a queue directory, in numeric order. */
export async function slotFiles(queueDir: string): Promise<SlotFile[]> {
  const dir = path.join(queueDir, 'incoming');
  const names = (await readdir(dir)).sort((a, b) => Number(a) - Number(b));
  return Promise.all(
    names.map(async (name) => {
      const file = path.join(dir, name);
      const bytes = await readFile(file);
      const r = decodeSlotRecord(bytes);
      return { file, bytes, ...(r ? { record: { message: JSON.parse(r.envelope.toString('utf8')) as QueuedMessage, content: r.content } } : {}) };
    }),
  );
}

/** The slot holding record `id`. */
export async function slotOf(queueDir: string, id: string): Promise<SlotFile & Required<Pick<SlotFile, 'record'>>> {
  const slot = (await slotFiles(queueDir)).find((s) => s.record?.message.envelope.id === id);
  if (!slot?.record) throw new Error(`no slot holds ${id}`);
  return slot as SlotFile & Required<Pick<SlotFile, 'record'>>;
}

/**
 * Writes record `id` out of its slot as an earlier version kept it: `content/<id>.eml` and its envelope
 * in `envelopeDir` (`content` for the layout before slots, `pre-submission` for the one before that).
 * The slot is emptied unless `keepSlot` (a crash between writing the envelope and freeing the slot).
 */
export async function writeOldLayout(queueDir: string, id: string, envelopeDir: 'content' | 'pre-submission', keepSlot = false): Promise<void> {
  const slot = await slotOf(queueDir, id);
  await mkdir(path.join(queueDir, envelopeDir), { recursive: true });
  await writeFile(path.join(queueDir, 'content', `${id}.eml`), slot.record.content);
  await writeFile(path.join(queueDir, envelopeDir, `${id}.json`), JSON.stringify(slot.record.message));
  if (!keepSlot) await truncate(slot.file, 0);
}
