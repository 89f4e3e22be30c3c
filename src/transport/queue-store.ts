/**
 * Longer than 350 lines because the record types, the index and the on-disk layout they are kept in
 * (which directory or slot holds what, which writes are synced when) are one contract, read together.
 */
import { mkdir, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { randomHex } from '../net/random-hex.js';
import { fsyncDir, writeDurably, writeNewFile } from '../storage/durable-write.js';
import { ContentCache } from './content-cache.js';
import { readSlotContent, SlotPool, streamSlotContent, type SlotPlace } from './slot-pool.js';
import { readSlotRecords } from './slot-record.js';
import type { EnvelopeRecipient, Envelope, RecipientResult } from './types.js';

/** The queue states of transport.md, each a directory of the store. */
export const QUEUE_STATES = [
  'pre-submission',
  'awaiting-directory-lookup',
  'local-delivery',
  'remote-delivery',
  'unreachable',
  'dsn-pending',
  'failed-retry',
  'deferred',
] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/** One copy of a message to one final address, with where it stands. */
export interface Delivery {
  /** The address the copy goes to: a canonical mailbox, or the (forwarded) remote address. */
  address: string;
  /** The envelope recipient this copy came from (its NOTIFY and ORCPT decide the DSNs). */
  recipient: EnvelopeRecipient;
  /** The recipient to hand remote delivery (ORCPT naming the original when forwarded). */
  outbound?: EnvelopeRecipient;
  quotaBytes?: number;
  status: 'pending' | 'delivered' | 'failed';
  /** The last attempt's result (the final one once delivered or failed). */
  result?: RecipientResult;
  /** A delay DSN has been sent for this copy. */
  delayNotified?: boolean;
  /** The failure (or success) has been reported by DSN, Badmail or a decision not to report. */
  reported?: boolean;
}

/** One queued message: an envelope file in a state directory, and a content file it points at. */
export interface QueuedMessage {
  envelope: Envelope;
  /** The content file's name under `content/` (shared by the parts a message was split into). */
  contentId: string;
  /** The message's first queue id; parts split off by the categorizer keep it (the tracking log searches by it). */
  rootId: string;
  /** The Message-ID header, when the message has one. */
  messageId?: string;
  /** What kind of work the record holds once categorized. */
  kind: 'message' | 'local' | 'remote';
  /** For `remote`: the recipient domain this part goes to. */
  domain?: string;
  deliveries: Delivery[];
  attempts: number;
  /** When the record is next due (ms epoch); 0 = at once. */
  nextAttemptAt: number;
  lastError?: string;
  frozen?: boolean;
}

/** A record where it stands: the queue is a state, or `remote-delivery/<destination>`. */
export interface StoredMessage {
  queue: string;
  message: QueuedMessage;
}

/** A received message's content, written into a slot but not yet a record: `commit` makes it one (durably), `abandon` frees the slot. */
export interface Receipt {
  /** Bytes of content written. */
  size: number;
  /** The content, when it is held whole in memory (up to 64 KiB) and none of it is on disk yet. */
  held: Buffer | undefined;
  commit(message: QueuedMessage): Promise<void>;
  abandon(): Promise<void>;
}

/** A received record still in its slot file (alone, or one of a group). */
interface SlotHold {
  recordId: string;
  file: string;
  /** Where its content starts in the slot. */
  offset: number;
  contentLength: number;
  /** Set once the content is being (or has been) copied out to `content/<id>.eml`. */
  copied?: Promise<void>;
  /** A copy out was started, so `content/<id>.eml` may exist even if it then failed (e.g. renamed, its directory sync failed). */
  copyStarted: boolean;
}

/** A write to the store that failed: a storage error, which the receive server answers with 452 4.3.1. */
export class QueueStorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueueStorageError';
  }
}

/** A record's copies, to change freely: before categorization, one pending copy per envelope recipient. */
export function copiesOf(m: QueuedMessage): Delivery[] {
  return m.kind === 'message'
    ? m.envelope.recipients.map((r): Delivery => ({ address: r.address, recipient: r, status: 'pending' }))
    : m.deliveries.map((d) => ({ ...d }));
}

/** The state part of a queue name (`remote-delivery/example.org` → `remote-delivery`). */
export function queueState(queue: string): QueueState {
  const state = queue.split('/')[0] as QueueState;
  if (!QUEUE_STATES.includes(state)) throw new Error(`unknown queue ${queue}`);
  return state;
}

/** The queue of remote delivery for a destination (a domain), safe as one path segment. */
export function remoteQueue(destination: string): string {
  return `remote-delivery/${destination.toLowerCase().replace(/[^a-z0-9._-]/g, '_').replace(/^\.+/, '_')}`;
}

/** A new queue id: time-ordered, unique, filesystem-safe. */
export function newQueueId(now: number): string {
  return `${now.toString(36).toUpperCase().padStart(9, '0')}${randomHex(5).toUpperCase()}`;
}

const ENVELOPE_SUFFIX = '.json';
const CONTENT_DIR = 'content';
const SLOT_DIR = 'incoming';
/** Where the envelopes of `pre-submission` were kept before they moved beside their content. */
const LEGACY_PRE_SUBMISSION_DIR = 'pre-submission';

/**
 * The queue on disk: `content/<id>.eml` holds each message's bytes, written once; an envelope file
 * `<state>[/<destination>]/<id>.json` says where the message stands. Every write goes to `tmp/`, is
 * fsynced, renamed into place, and the directory fsynced; a move between queues is one rename. So at
 * any crash each message has exactly one envelope file, complete, and `open` rebuilds from them.
 * `pre-submission`'s envelopes live in `content/`, beside their content (a content file's name is
 * synced with the first record that refers to it).
 *
 * Received mail arrives in a slot instead (`incoming/<n>`, `slot-pool.ts`): content and envelope in
 * one pre-named file, one fsync before the 250. It stays there while in `pre-submission`; its content
 * is copied out to `content/<id>.eml` (durably) only when something needs it as a file: a part
 * queued, a report, a change to the record (which is then written as an envelope and the slot
 * freed). A slot and an envelope for the same id after a crash: the envelope is the newer.
 */
export class QueueStore {
  private readonly index = new Map<string, StoredMessage>();
  /** Messages (by root id) that had records on disk when the store was opened: their deliveries may already have happened. */
  private readonly recoveredRoots = new Set<string>();
  /** Records per content file: a removal knows whether the content goes too without a scan of the queue. */
  private readonly contentRefs = new Map<string, number>();
  private readonly frozenQueues = new Set<string>();
  /** Content files whose names no directory sync has covered yet: the first record added for one syncs `content/`. */
  private readonly unsyncedContent = new Set<string>();
  /** Recently written content, read from memory by the split and the local delivery that follow. */
  private readonly recent = new ContentCache(16 * 1024 * 1024, 256 * 1024);
  /** Received records still in their slots, by content id (a received message's content id is its queue id). */
  private readonly slotted = new Map<string, SlotHold>();
  /** Records held per slot file: a slot is emptied only when every record in it has been taken up. */
  private readonly slotRecords = new Map<string, number>();
  private readonly slots: SlotPool;
  private readonly watchers: ((queue: string, message: QueuedMessage) => void)[] = [];

  constructor(
    readonly root: string,
    private readonly fsync: boolean,
  ) {
    this.slots = new SlotPool(path.join(root, SLOT_DIR), fsync);
  }

  /** Creates the directories, drops half-written temporary files, and loads every envelope; returns the count. */
  async open(): Promise<number> {
    await rm(path.join(this.root, 'tmp'), { recursive: true, force: true });
    for (const state of ['tmp', CONTENT_DIR, ...QUEUE_STATES]) await mkdir(this.queueDir(state), { recursive: true });
    await this.moveLegacyPreSubmission();
    this.index.clear();
    this.contentRefs.clear();
    this.recoveredRoots.clear();
    for (const state of QUEUE_STATES) {
      if (state === 'remote-delivery') {
        for (const dest of await readdir(path.join(this.root, state))) await this.loadQueue(`${state}/${dest}`);
      } else {
        await this.loadQueue(state);
      }
    }
    await this.loadSlots();
    await this.dropUnreferencedContent();
    await this.loadFrozen();
    return this.index.size;
  }

  /** Closes the slot descriptors kept open between messages; the queue on disk stays as it is. */
  async close(): Promise<void> {
    await this.slots.close();
  }

  /** A store written before `pre-submission` moved into `content/`: its envelopes are moved there (durably) and the old directory goes. */
  private async moveLegacyPreSubmission(): Promise<void> {
    const legacy = path.join(this.root, LEGACY_PRE_SUBMISSION_DIR);
    const names = await readdir(legacy).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (names === undefined) return;
    for (const name of names) await rename(path.join(legacy, name), path.join(this.queueDir('pre-submission'), name));
    if (this.fsync) await fsyncDir(this.queueDir('pre-submission'));
    await rm(legacy, { recursive: true });
    if (this.fsync) await fsyncDir(this.root);
  }

  private async loadQueue(queue: string): Promise<void> {
    for (const name of await readdir(this.queueDir(queue))) {
      if (!name.endsWith(ENVELOPE_SUFFIX)) continue;
      const message = JSON.parse(await readFile(path.join(this.queueDir(queue), name), 'utf8')) as QueuedMessage;
      this.index.set(message.envelope.id, { queue, message });
      this.refContent(message.contentId, 1);
      this.recoveredRoots.add(message.rootId);
    }
  }

  /**
   * Received records left in their slots. A slot that holds no complete record (empty, or torn by a
   * crash before its fsync: never answered 250) is free; so is one whose records were all written out
   * as envelopes before the crash (an envelope is the newer). Slots are decoded one after another, their
   * content left in the file: memory at start does not grow with what the slots hold.
   */
  private async loadSlots(): Promise<void> {
    this.slotted.clear();
    this.slotRecords.clear();
    for (const file of await this.slots.open()) {
      const records = await readSlotRecords(file).catch((err: unknown) => {
        throw storageError(`reading slot ${path.basename(file)}`, err);
      });
      for (const record of records) {
        const message = parseSlotEnvelope(record.envelope);
        if (!message || this.index.has(message.envelope.id)) continue;
        this.hold(file, record.offset, message, record.contentLength);
        this.recoveredRoots.add(message.rootId);
      }
      if (!this.slotRecords.has(file)) await this.slots.release(file);
    }
  }

  /**
   * Holds a record in its slot. Records found at start are counted one by one; a group just written
   * counts all its records from its first member's hold (members are held one per turn of the event
   * loop), so none taken up before the others are held can empty the slot under them.
   */
  private hold(file: string, offset: number, message: QueuedMessage, contentLength: number, recordsInSlot?: number): void {
    this.slotted.set(message.contentId, { recordId: message.envelope.id, file, offset, contentLength, copyStarted: false });
    if (recordsInSlot === undefined) this.slotRecords.set(file, (this.slotRecords.get(file) ?? 0) + 1);
    else if (!this.slotRecords.has(file)) this.slotRecords.set(file, recordsInSlot);
    this.index.set(message.envelope.id, { queue: 'pre-submission', message });
    this.refContent(message.contentId, 1);
  }

  /** Content a crash left without any envelope (received but never answered 250, or fully delivered). */
  private async dropUnreferencedContent(): Promise<void> {
    for (const name of await readdir(path.join(this.root, CONTENT_DIR))) {
      // Envelopes of pre-submission share the directory.
      if (name.endsWith(ENVELOPE_SUFFIX)) continue;
      const contentId = name.replace(/\.eml$/, '');
      if (!this.contentRefs.has(contentId)) await unlink(path.join(this.root, CONTENT_DIR, name));
      else {
        // Copied out of its slot before the crash: renamed into place complete, so good as it is.
        const hold = this.slotted.get(contentId);
        if (hold) {
          hold.copied = Promise.resolve();
          hold.copyStarted = true;
        }
      }
    }
  }

  /** The path of a content file. */
  contentPath(contentId: string): string {
    return path.join(this.root, CONTENT_DIR, `${contentId}.eml`);
  }

  /** Writes a message's content from a stream, fsynced; its name is made durable by the first `add` that refers to it. Resolves to its size in bytes. */
  async writeContent(contentId: string, source: Readable | Buffer | string): Promise<number> {
    const target = this.contentPath(contentId);
    try {
      const chunks = typeof source === 'string' ? [Buffer.from(source, 'utf8')] : Buffer.isBuffer(source) ? [source] : (source as AsyncIterable<Buffer>);
      const kept: Buffer[] = [];
      const size = await writeNewFile(target, keeping(chunks, kept, this.recent.maxItemBytes), this.fsync);
      if (this.fsync) this.unsyncedContent.add(contentId);
      if (kept.length > 0) this.recent.set(contentId, Buffer.concat(kept));
      return size;
    } catch (err) {
      await unlink(target).catch(() => undefined);
      throw storageError(`writing content ${contentId}`, err);
    }
  }

  /**
   * Takes a received message's content, keeping a copy in memory for what follows: held in memory up to
   * 64 KiB, else written into a slot of its own as it arrives. The returned receipt's `commit` adds the
   * record to `pre-submission`: its envelope and trailer follow the content and the slot is synced
   * once, shared with the small records committed beside it (`slot-group.ts`); that is all the 250
   * waits for, since the slot's name was made durable with its batch.
   */
  async receive(contentId: string, source: AsyncIterable<Buffer>): Promise<Receipt> {
    let size: number;
    const kept: Buffer[] = [];
    const writer = this.slots.writer();
    try {
      size = await writer.write(keeping(source, kept, this.recent.maxItemBytes));
    } catch (err) {
      await writer.abandon().catch(() => undefined);
      throw storageError(`writing content ${contentId}`, err);
    }
    return {
      size,
      held: writer.content(),
      commit: async (message) => {
        let place: SlotPlace;
        try {
          if (this.index.has(message.envelope.id)) throw new Error(`queue id ${message.envelope.id} already in use`);
          place = await writer.finish(Buffer.from(JSON.stringify(message), 'utf8'));
        } catch (err) {
          await writer.abandon().catch(() => undefined);
          throw storageError(`writing ${message.envelope.id}`, err);
        }
        if (kept.length > 0) this.recent.set(contentId, Buffer.concat(kept));
        this.hold(place.file, place.offset, message, size, place.records);
        this.changed('pre-submission', message);
      },
      abandon: () => writer.abandon(),
    };
  }

  /** A content file's bytes when they are still held in memory from its writing, else undefined (read the file). */
  recentContent(contentId: string): Buffer | undefined {
    return this.recent.get(contentId);
  }

  /** The content's bytes when held in memory or in a slot (small enough to read whole), else undefined: read `contentFile`. */
  async heldContent(contentId: string): Promise<Buffer | undefined> {
    const recent = this.recent.get(contentId);
    const hold = this.slotted.get(contentId);
    if (recent !== undefined || hold === undefined || hold.contentLength > this.recent.maxItemBytes) return recent;
    const bytes = await readSlotContent(hold.file, hold.offset, hold.contentLength).catch((err: unknown) => {
      throw storageError(`reading the slot of ${contentId}`, err);
    });
    this.recent.set(contentId, bytes);
    return bytes;
  }

  /** The path of a content file to read, copied out of its slot first if it is still in one. */
  async contentFile(contentId: string): Promise<string> {
    const hold = this.slotted.get(contentId);
    if (hold) await this.copyOut(hold);
    return this.contentPath(contentId);
  }

  /**
   * Copies content out of its slot to `content/<id>.eml`, durably (file and directory synced), once:
   * a record that refers to it (a part), or a reader that needs a file, may then rely on it.
   */
  private copyOut(hold: SlotHold): Promise<void> {
    const contentId = hold.recordId;
    hold.copyStarted = true;
    hold.copied ??= (async () => {
      const recent = this.recent.get(contentId);
      const tmp = path.join(this.root, 'tmp', `${contentId}.eml.${randomHex(6)}`);
      await writeDurably(tmp, this.contentPath(contentId), recent ? [recent] : streamSlotContent(hold.file, hold.offset, hold.contentLength), this.fsync);
    })().catch((err: unknown) => {
      hold.copied = undefined;
      throw storageError(`copying the content of ${contentId} out of its slot`, err);
    });
    return hold.copied;
  }

  /** The slot a record is held in, if it is still in one (parts share their message's content id, not its slot). */
  private slotOf(stored: StoredMessage): SlotHold | undefined {
    const hold = this.slotted.get(stored.message.contentId);
    return hold?.recordId === stored.message.envelope.id ? hold : undefined;
  }

  /** A record taken up (written as an envelope, or done with): its slot is emptied and handed out again once no other record is in it. */
  private async unslot(hold: SlotHold): Promise<void> {
    this.slotted.delete(hold.recordId);
    const left = (this.slotRecords.get(hold.file) ?? 1) - 1;
    if (left > 0) return void this.slotRecords.set(hold.file, left);
    this.slotRecords.delete(hold.file);
    await this.slots.release(hold.file).catch((err: unknown) => {
      throw storageError(`freeing the slot of ${hold.recordId}`, err);
    });
  }

  /** Forgets content nothing refers to any more, and removes its file if it has one. */
  private async discardContent(contentId: string, hasFile: boolean): Promise<void> {
    this.unsyncedContent.delete(contentId);
    this.recent.delete(contentId);
    if (!hasFile) return;
    await unlink(this.contentPath(contentId)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** Adds a new record to a queue, durably: its envelope, and the name of its content if no sync covered it yet (or its content copied out of a slot). */
  async add(queue: string, message: QueuedMessage): Promise<void> {
    if (this.index.has(message.envelope.id)) throw new Error(`queue id ${message.envelope.id} already in use`);
    const hold = this.slotted.get(message.contentId);
    if (hold) await this.copyOut(hold);
    await this.writeEnvelope(queue, message);
    if (this.unsyncedContent.delete(message.contentId) && this.queueDir(queue) !== path.join(this.root, CONTENT_DIR)) {
      // The 250 (or the report) that follows promises the content: its name must survive a power failure too.
      await fsyncDir(path.join(this.root, CONTENT_DIR)).catch((err: unknown) => {
        throw storageError(`syncing the content of ${message.envelope.id}`, err);
      });
    }
    this.index.set(message.envelope.id, { queue, message });
    this.refContent(message.contentId, 1);
    this.changed(queue, message);
  }

  /** Rewrites a record in place (atomically), e.g. with per-recipient progress. */
  async update(message: QueuedMessage): Promise<void> {
    const stored = this.require(message.envelope.id);
    await this.rewrite(stored, message);
    stored.message = message;
    this.changed(stored.queue, message);
  }

  /** Rewrites a record and moves it to another queue: two atomic steps, so a crash leaves one copy. */
  async move(message: QueuedMessage, queue: string): Promise<void> {
    const stored = this.require(message.envelope.id);
    await this.rewrite(stored, message);
    stored.message = message;
    this.changed(stored.queue, message);
    if (stored.queue === queue) return;
    const from = stored.queue;
    try {
      await this.ensureQueueDir(queue);
      await rename(this.envelopePath(from, message.envelope.id), this.envelopePath(queue, message.envelope.id));
      // The file is in its new queue now, whether or not the syncs below succeed; later writes must go there.
      stored.queue = queue;
      this.changed(queue, message);
      if (this.fsync) {
        await fsyncDir(this.queueDir(queue));
        await fsyncDir(this.queueDir(from));
      }
    } catch (err) {
      throw storageError(`moving ${message.envelope.id} to ${queue}`, err);
    }
  }

  /**
   * Removes a record; its content goes too once no other record refers to it. The directory is not
   * fsynced: whatever replaced the record (its parts, a Maildir file, a report) is already durable, so
   * a removal lost in a power failure only repeats work (at-least-once), it loses nothing.
   */
  async remove(id: string): Promise<void> {
    const stored = this.require(id);
    const hold = this.slotOf(stored);
    if (hold) await this.unslot(hold);
    else await unlink(this.envelopePath(stored.queue, id));
    // Gone from disk, so gone from the index: an update must not bring it back.
    this.index.delete(id);
    const contentId = stored.message.contentId;
    // A record that never left its slot and whose content was never copied out has no content file:
    // most received mail, so no removal is tried (it was one failing unlink per message).
    if (this.refContent(contentId, -1) === 0) await this.discardContent(contentId, hold === undefined || hold.copyStarted);
  }

  /** Counts a record more or less for a content file; returns how many are left. */
  private refContent(contentId: string, delta: number): number {
    const n = (this.contentRefs.get(contentId) ?? 0) + delta;
    if (n > 0) this.contentRefs.set(contentId, n);
    else this.contentRefs.delete(contentId);
    return n;
  }

  /** Whether the message had records in the queue when the store was opened (a crash may have left work half done). */
  recovered(rootId: string): boolean {
    return this.recoveredRoots.has(rootId);
  }

  /** A record by queue id. */
  get(id: string): StoredMessage | undefined {
    return this.index.get(id);
  }

  /** Every record. */
  all(): StoredMessage[] {
    return [...this.index.values()];
  }

  /** Tells `listener` of each record added, rewritten or moved, as the index has it now (the scheduler orders due work by it). */
  watch(listener: (queue: string, message: QueuedMessage) => void): void {
    this.watchers.push(listener);
  }

  private changed(queue: string, message: QueuedMessage): void {
    for (const w of this.watchers) w(queue, message);
  }

  /** Whether a queue is frozen by the administrator. */
  isFrozen(queue: string): boolean {
    return this.frozenQueues.has(queue);
  }

  /** Queues frozen right now. */
  frozen(): string[] {
    return [...this.frozenQueues];
  }

  /** Freezes or unfreezes a queue; the setting survives a restart. */
  async setFrozen(queue: string, frozen: boolean): Promise<void> {
    if (frozen) this.frozenQueues.add(queue);
    else this.frozenQueues.delete(queue);
    await this.writeAtomic(path.join(this.root, 'frozen-queues.json'), JSON.stringify([...this.frozenQueues]));
  }

  private async loadFrozen(): Promise<void> {
    this.frozenQueues.clear();
    try {
      for (const q of JSON.parse(await readFile(path.join(this.root, 'frozen-queues.json'), 'utf8')) as string[]) this.frozenQueues.add(q);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private require(id: string): StoredMessage {
    const stored = this.index.get(id);
    if (!stored) throw new Error(`no queued message ${id}`);
    return stored;
  }

  private envelopePath(queue: string, id: string): string {
    return path.join(this.queueDir(queue), `${id}${ENVELOPE_SUFFIX}`);
  }

  /**
   * Writes a record's envelope where it stands. A record still in its slot is written out as an envelope
   * (its content copied out first), then its slot freed: a slot is never rewritten in place, where a
   * torn write would lose the record.
   */
  private async rewrite(stored: StoredMessage, message: QueuedMessage): Promise<void> {
    const hold = this.slotOf(stored);
    if (hold) await this.copyOut(hold);
    await this.writeEnvelope(stored.queue, message);
    if (hold) await this.unslot(hold);
  }

  private async writeEnvelope(queue: string, message: QueuedMessage): Promise<void> {
    await this.ensureQueueDir(queue).catch((err: unknown) => {
      throw storageError(`creating queue ${queue}`, err);
    });
    await this.writeAtomic(this.envelopePath(queue, message.envelope.id), JSON.stringify(message));
  }

  /** Creates a queue's directory if missing, synced into its parent: a crash must not lose a new `remote-delivery/<destination>` with its envelopes. */
  private async ensureQueueDir(queue: string): Promise<void> {
    const dir = this.queueDir(queue);
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined && this.fsync) await fsyncDir(path.dirname(dir));
  }

  /** A queue's directory: `pre-submission` shares `content/`, every other queue has its own. */
  private queueDir(queue: string): string {
    return path.join(this.root, queue === 'pre-submission' ? CONTENT_DIR : queue);
  }

  private async writeAtomic(target: string, text: string): Promise<void> {
    const tmp = path.join(this.root, 'tmp', `${path.basename(target)}.${randomHex(6)}`);
    try {
      await writeDurably(tmp, target, [Buffer.from(text, 'utf8')], this.fsync);
    } catch (err) {
      throw storageError(`writing ${path.relative(this.root, target)}`, err);
    }
  }
}

/** Passes the chunks on, and keeps them in `kept` while they add up to at most `limit` bytes (else keeps none). */
async function* keeping(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, kept: Buffer[], limit: number): AsyncGenerator<Buffer> {
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += chunk.length;
    if (bytes <= limit) kept.push(chunk);
    else kept.length = 0;
    yield chunk;
  }
}

/** A slot's envelope, if it is a received record (anything else means the slot is not one of ours to trust). */
function parseSlotEnvelope(bytes: Buffer): QueuedMessage | undefined {
  try {
    const m = JSON.parse(bytes.toString('utf8')) as Partial<QueuedMessage> | null;
    return typeof m?.envelope?.id === 'string' && m.contentId === m.envelope.id ? (m as QueuedMessage) : undefined;
  } catch {
    return undefined;
  }
}

function storageError(what: string, err: unknown): QueueStorageError {
  if (err instanceof QueueStorageError) return err;
  return new QueueStorageError(`queue store: ${what}: ${(err as Error).message}`, { cause: err });
}
