/**
 * Slot files: empty files made ahead of need in a directory of their own, so that a received message
 * can be made durable, name and all, by one fsync of the file it is written into. Files are made in
 * batches, each batch named durably by one fsync of the directory before any of its files is handed
 * out; a file done with is emptied and handed out again, so in steady state no names are made at all.
 * A slot's descriptor stays open from its making and from one use to the next (up to `KEEP_OPEN` of
 * them), so a slot costs one write, one fdatasync and, at release, one ftruncate: no open or close. A
 * slot holds one record, or a group of small ones committed together (`slot-group.ts`).
 * What a slot holds is framed by `slot-record.ts`.
 */
import fs from 'node:fs';
import { mkdir, readdir, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { fsyncDir, writeAll } from '../storage/durable-write.js';
import { SlotGroups } from './slot-group.js';
import { readSlotBytes, recordTail } from './slot-record.js';

const openFd = promisify(fs.open);
const fdatasyncFd = promisify(fs.fdatasync);
const ftruncateFd = promisify(fs.ftruncate);
const closeFd = promisify(fs.close);
const fstatFd = promisify(fs.fstat);

/** Files made at once when none is free: one directory fsync covers them all. */
const BATCH = 64;
/**
 * Slot descriptors kept open between uses. A backlog of records held in their slots (a frozen queue)
 * must not hold a descriptor each: past this many, a slot's descriptor is closed after its record is
 * written and its release opens the file by name again.
 */
const KEEP_OPEN = 256;
/** Content up to this size is held until the trailer and written with it in one call. */
const BUFFER_BYTES = 64 * 1024;

/** The slot files of one directory: which are free, and making more when none is. */
export class SlotPool {
  /** Empty slot files, the most recently emptied last (handed out first: its pages are likely still cached). */
  private readonly free: string[] = [];
  /** Open descriptors of slots not being written, by file (at most `KEEP_OPEN`). */
  private readonly descriptors = new Map<string, number>();
  private next = 0;
  private growing: Promise<void> | undefined;
  /** Small records committed together, a slot and a sync per group. */
  readonly groups = new SlotGroups(this);

  constructor(
    readonly dir: string,
    private readonly fsync: boolean,
  ) {}

  /**
   * Finds the slot files: empty ones are free, the others are returned by name for the store to decode
   * (`readSlotRecord`), never read here: a frozen queue may hold thousands of large records. Makes the
   * first batch if none is free.
   */
  async open(): Promise<string[]> {
    await this.close();
    const created = await mkdir(this.dir, { recursive: true });
    if (created !== undefined && this.fsync) await fsyncDir(path.dirname(this.dir));
    this.free.length = 0;
    const used: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (!/^\d+$/.test(name)) continue;
      this.next = Math.max(this.next, Number(name) + 1);
      const file = path.join(this.dir, name);
      if ((await stat(file)).size === 0) this.free.push(file);
      else used.push(file);
    }
    if (this.free.length === 0) await this.grow();
    return used;
  }

  /** A writer for one received record: it takes a slot only if its content outgrows what is held in memory (else at `finish`, in a group). */
  writer(): SlotWriter {
    return new SlotWriter(this);
  }

  /** A free slot, empty, to write into; waits for the next batch when none is free (everyone waiting shares it). */
  async take(): Promise<OpenSlot> {
    for (;;) {
      const file = this.free.pop();
      if (file !== undefined) {
        const kept = this.descriptors.get(file);
        if (kept !== undefined) {
          this.descriptors.delete(file);
          return { file, fd: kept };
        }
        try {
          // Never created here, so its name is the durable one.
          return { file, fd: await openFd(file, 'r+') };
        } catch (err) {
          this.free.push(file);
          throw err;
        }
      }
      await (this.growing ??= this.grow().finally(() => (this.growing = undefined)));
    }
  }

  /**
   * Writes the last bytes of what a slot holds at `at` and syncs the file, then puts its descriptor down.
   * fdatasync is enough: it writes the data and every attribute needed to read it back (the file grew,
   * so its size), leaving out only times. A kept descriptor outlives its name: a slot no longer linked
   * (its directory removed or replaced) would take mail into a file no restart can find, so that is an
   * error, as opening it by name was.
   */
  async seal(slot: OpenSlot, bytes: Buffer, at: number): Promise<void> {
    let orphaned = false;
    try {
      await writeAll(slot.fd, bytes, at);
      const [stat] = await Promise.all([fstatFd(slot.fd), this.fsync ? fdatasyncFd(slot.fd) : undefined]);
      if (stat.nlink === 0) {
        orphaned = true;
        throw new Error(`slot ${slot.file} is no longer in its directory`);
      }
    } finally {
      if (orphaned) await closeFd(slot.fd);
      else await this.putDown(slot.file, slot.fd);
    }
  }

  /** A writer is done with a slot's descriptor: kept open for the slot's release and next use, or closed when enough are open. */
  async putDown(file: string, fd: number): Promise<void> {
    if (this.descriptors.size < KEEP_OPEN && !this.descriptors.has(file)) this.descriptors.set(file, fd);
    else await closeFd(fd);
  }

  /**
   * Empties a slot and hands it out again. Not synced: the work its record stood for is durable
   * elsewhere by now, so if a power failure undoes the truncation the record is found again at start
   * and its work repeated (at-least-once), never lost; the next record written into the slot is
   * fsynced with the truncation anyway.
   */
  async release(file: string): Promise<void> {
    const fd = this.descriptors.get(file);
    if (fd === undefined) await truncate(file, 0);
    else {
      try {
        await ftruncateFd(fd, 0);
      } catch (err) {
        // Not trusted again: the next use opens the file anew.
        this.descriptors.delete(file);
        await closeFd(fd).catch(() => undefined);
        throw err;
      }
    }
    this.free.push(file);
  }

  /** Closes the descriptors kept open (the slots stay as they are). */
  async close(): Promise<void> {
    const fds = [...this.descriptors.values()];
    this.descriptors.clear();
    for (const fd of fds) await closeFd(fd);
  }

  private async grow(): Promise<void> {
    const made: string[] = [];
    for (let i = 0; i < BATCH; i++) {
      const file = path.join(this.dir, String(this.next++));
      // Kept open for the slot's first use (writing, syncing and emptying need no read access).
      await this.putDown(file, await openFd(file, 'wx', 0o600));
      made.push(file);
    }
    if (this.fsync) await fsyncDir(this.dir);
    this.free.push(...made);
  }
}

/** A slot file being written, through its descriptor. */
export interface OpenSlot {
  file: string;
  fd: number;
}

/** Where a record was written: its slot file, the byte its content starts at, and how many records the slot holds. */
export interface SlotPlace {
  file: string;
  offset: number;
  records: number;
}

/**
 * One record on its way into a slot: the content as it arrives, then the envelope and trailer, then one
 * sync. Content that fits in `BUFFER_BYTES` is held, and at `finish` the whole record joins a group
 * (`slot-group.ts`) that shares a slot and its sync with the records committed beside it; larger
 * content takes a slot of its own and is written as it comes, at explicit offsets from 0 (a reused
 * descriptor's own position is wherever the slot's previous use ended).
 */
export class SlotWriter {
  private crc = 0;
  private length = 0;
  /** Content not written yet, and its bytes. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The slot of its own, once the content outgrew what is held. */
  private slot: OpenSlot | undefined;
  private sealed = false;

  constructor(private readonly pool: SlotPool) {}

  /** Takes the content; resolves to its length. */
  async write(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<number> {
    for await (const chunk of chunks) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      this.crc = crc32(chunk, this.crc);
      this.length += chunk.length;
      if (this.heldBytes > BUFFER_BYTES) {
        this.slot ??= await this.pool.take();
        const at = this.length - this.heldBytes;
        await writeAll(this.slot.fd, this.takeHeld(), at);
      }
    }
    return this.length;
  }

  /** The content, when it took no slot of its own (it fits in `BUFFER_BYTES`): held whole in memory, nothing on disk. */
  content(): Buffer | undefined {
    if (this.slot !== undefined) return undefined;
    const bytes = this.takeHeld();
    this.held = [bytes];
    this.heldBytes = bytes.length;
    return bytes;
  }

  /** Ends the record with its envelope and trailer, durably: in a group if it was held whole, else in its own slot. */
  async finish(envelope: Buffer): Promise<SlotPlace> {
    const at = this.length - this.heldBytes;
    this.held.push(recordTail(this.crc, this.length, envelope));
    if (this.slot === undefined) return this.pool.groups.commit(this.takeHeld());
    this.sealed = true;
    await this.pool.seal(this.slot, this.takeHeld(), at);
    return { file: this.slot.file, offset: 0, records: 1 };
  }

  /** Frees the slot of its own, if it took one: its record is not to be kept (abandoned, or its commit failed). */
  async abandon(): Promise<void> {
    const slot = this.slot;
    if (slot === undefined) return;
    this.slot = undefined;
    if (!this.sealed) await this.pool.putDown(slot.file, slot.fd);
    await this.pool.release(slot.file);
  }

  private takeHeld(): Buffer {
    const bytes = this.held.length === 1 ? (this.held[0] as Buffer) : Buffer.concat(this.held);
    this.held = [];
    this.heldBytes = 0;
    return bytes;
  }
}

/** `length` bytes of a slot file from `offset` (a record's content). */
export async function readSlotContent(file: string, offset: number, length: number): Promise<Buffer> {
  const fd = await openFd(file, 'r');
  try {
    return await readSlotBytes(fd, Buffer.allocUnsafe(length), offset);
  } finally {
    await closeFd(fd);
  }
}

/** `length` bytes of a slot file from `offset` as a stream, for content too big to hold in memory. */
export function streamSlotContent(file: string, offset: number, length: number): AsyncIterable<Buffer> | Iterable<Buffer> {
  return length === 0 ? [] : (fs.createReadStream(file, { start: offset, end: offset + length - 1 }) as AsyncIterable<Buffer>);
}
