/**
 * Slot files: empty files made ahead of need in a directory of their own, so that a received message
 * can be made durable, name and all, by one fsync of the file it is written into. Files are made in
 * batches, each batch named durably by one fsync of the directory before any of its files is handed
 * out; a file done with is emptied and handed out again, so in steady state no names are made at all.
 * A slot's descriptor stays open from its making and from one use to the next (up to `KEEP_OPEN` of
 * them), so a message costs its slot one write, one fdatasync and, at release, one ftruncate: no open
 * or close.
 * What a slot holds is framed by `slot-record.ts`.
 */
import fs from 'node:fs';
import { mkdir, readdir, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { fsyncDir, writeAll } from '../storage/durable-write.js';
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

  /** A free slot, empty, to write a record into; waits for the next batch when none is free (everyone waiting shares it). */
  async take(): Promise<SlotWriter> {
    for (;;) {
      const file = this.free.pop();
      if (file !== undefined) {
        const kept = this.descriptors.get(file);
        if (kept !== undefined) {
          this.descriptors.delete(file);
          return new SlotWriter(file, kept, this);
        }
        try {
          // Never created here, so its name is the durable one.
          return new SlotWriter(file, await openFd(file, 'r+'), this);
        } catch (err) {
          this.free.push(file);
          throw err;
        }
      }
      await (this.growing ??= this.grow().finally(() => (this.growing = undefined)));
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

/**
 * One record being written into a slot: the content as it arrives, then the envelope and trailer, then
 * one sync. Content that fits in `BUFFER_BYTES` goes out with the trailer in a single write; larger
 * content is written as it comes. Writes are at explicit offsets from 0: a reused descriptor's own
 * position is wherever the slot's previous record ended.
 */
export class SlotWriter {
  private crc = 0;
  private length = 0;
  /** Content not written yet, and its bytes. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private closed = false;
  /** The file was unlinked while its descriptor was kept (its directory removed or replaced): never used again. */
  private orphaned = false;

  constructor(
    readonly file: string,
    private readonly fd: number,
    private readonly pool: SlotPool,
  ) {}

  /** Takes the content; resolves to its length. */
  async write(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<number> {
    for await (const chunk of chunks) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      this.crc = crc32(chunk, this.crc);
      this.length += chunk.length;
      if (this.heldBytes > BUFFER_BYTES) await this.writeHeld();
    }
    return this.length;
  }

  /**
   * Ends the record with its envelope and trailer and syncs it. fdatasync is enough: it writes the data
   * and every attribute needed to read it back (the file grew, so its size), leaving out only times.
   * A kept descriptor outlives its name: a slot no longer linked (its directory removed or replaced)
   * would take mail into a file no restart can find, so that is an error, as opening it by name was.
   */
  async finish(envelope: Buffer, sync: boolean): Promise<void> {
    try {
      await this.writeHeld(recordTail(this.crc, this.length, envelope));
      const [stat] = await Promise.all([fstatFd(this.fd), sync ? fdatasyncFd(this.fd) : undefined]);
      if (stat.nlink === 0) {
        this.orphaned = true;
        throw new Error(`slot ${this.file} is no longer in its directory`);
      }
    } finally {
      await this.close();
    }
  }

  /** Gives the descriptor back to the pool; the slot itself is released by the pool's `release`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.orphaned) await closeFd(this.fd);
    else await this.pool.putDown(this.file, this.fd);
  }

  /** Writes the held content (and the tail, when given) where the content written so far ends. */
  private async writeHeld(tail?: Buffer): Promise<void> {
    const parts = tail === undefined ? this.held : [...this.held, tail];
    const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    const at = this.length - this.heldBytes;
    this.held = [];
    this.heldBytes = 0;
    await writeAll(this.fd, bytes, at);
  }
}

/** The first `length` bytes of a slot file (its record's content). */
export async function readSlotContent(file: string, length: number): Promise<Buffer> {
  const fd = await openFd(file, 'r');
  try {
    return await readSlotBytes(fd, Buffer.allocUnsafe(length), 0);
  } finally {
    await closeFd(fd);
  }
}

/** The first `length` bytes of a slot file as a stream, for content too big to hold in memory. */
export function streamSlotContent(file: string, length: number): AsyncIterable<Buffer> | Iterable<Buffer> {
  return length === 0 ? [] : (fs.createReadStream(file, { start: 0, end: length - 1 }) as AsyncIterable<Buffer>);
}
