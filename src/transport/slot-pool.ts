/**
 * Slot files: empty files made ahead of need in a directory of their own, so that a received message
 * can be made durable, name and all, by one fsync of the file it is written into. Files are made in
 * batches, each batch named durably by one fsync of the directory before any of its files is handed
 * out; a file done with is emptied and handed out again, so in steady state no names are made at all.
 * What a slot holds is framed by `slot-record.ts`.
 */
import fs from 'node:fs';
import { mkdir, readdir, readFile, truncate } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { fsyncDir, writeAll } from '../storage/durable-write.js';
import { recordTail } from './slot-record.js';

const openFd = promisify(fs.open);
const readFd = promisify(fs.read);
const fdatasyncFd = promisify(fs.fdatasync);
const closeFd = promisify(fs.close);

/** Files made at once when none is free: one directory fsync covers them all. */
const BATCH = 64;

/** A slot file that held something at `open`, with its bytes, for the store to decode. */
export interface UsedSlot {
  file: string;
  bytes: Buffer;
}

/** The slot files of one directory: which are free, and making more when none is. */
export class SlotPool {
  /** Empty slot files, the most recently emptied last (handed out first: its pages are likely still cached). */
  private readonly free: string[] = [];
  private next = 0;
  private growing: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    private readonly fsync: boolean,
  ) {}

  /** Finds the slot files: empty ones are free, the others are returned with their bytes. Makes the first batch if none is free. */
  async open(): Promise<UsedSlot[]> {
    const created = await mkdir(this.dir, { recursive: true });
    if (created !== undefined && this.fsync) await fsyncDir(path.dirname(this.dir));
    this.free.length = 0;
    const used: UsedSlot[] = [];
    for (const name of await readdir(this.dir)) {
      if (!/^\d+$/.test(name)) continue;
      this.next = Math.max(this.next, Number(name) + 1);
      const file = path.join(this.dir, name);
      const bytes = await readFile(file);
      if (bytes.length === 0) this.free.push(file);
      else used.push({ file, bytes });
    }
    if (this.free.length === 0) await this.grow();
    return used;
  }

  /** A free slot file, empty; waits for the next batch when none is free (everyone waiting shares it). */
  async take(): Promise<string> {
    for (;;) {
      const file = this.free.pop();
      if (file !== undefined) return file;
      await (this.growing ??= this.grow().finally(() => (this.growing = undefined)));
    }
  }

  /**
   * Empties a slot and hands it out again. Not synced: the work its record stood for is durable
   * elsewhere by now, so if a power failure undoes the truncation the record is found again at start
   * and its work repeated (at-least-once), never lost; the next record written into the slot is
   * fsynced with the truncation anyway.
   */
  async release(file: string): Promise<void> {
    await truncate(file, 0);
    this.free.push(file);
  }

  private async grow(): Promise<void> {
    const made: string[] = [];
    for (let i = 0; i < BATCH; i++) {
      const file = path.join(this.dir, String(this.next++));
      await closeFd(await openFd(file, 'wx', 0o600));
      made.push(file);
    }
    if (this.fsync) await fsyncDir(this.dir);
    this.free.push(...made);
  }
}

/** One record being written into a slot: the content as it arrives, then the envelope and trailer, then one sync. */
export class SlotWriter {
  private crc = 0;
  private length = 0;
  private closed = false;

  private constructor(private readonly fd: number) {}

  /** Opens an (empty) slot file for writing; it is never created here, so its name is the durable one. */
  static async open(file: string): Promise<SlotWriter> {
    return new SlotWriter(await openFd(file, 'r+'));
  }

  /** Writes the content; resolves to its length. */
  async write(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<number> {
    for await (const chunk of chunks) {
      await writeAll(this.fd, chunk);
      this.crc = crc32(chunk, this.crc);
      this.length += chunk.length;
    }
    return this.length;
  }

  /**
   * Ends the record with its envelope and trailer and syncs it. fdatasync is enough: it writes the data
   * and every attribute needed to read it back (the file grew, so its size), leaving out only times.
   */
  async finish(envelope: Buffer, sync: boolean): Promise<void> {
    try {
      await writeAll(this.fd, recordTail(this.crc, this.length, envelope));
      if (sync) await fdatasyncFd(this.fd);
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeFd(this.fd);
  }
}

/** The first `length` bytes of a slot file (its record's content). */
export async function readSlotContent(file: string, length: number): Promise<Buffer> {
  const fd = await openFd(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    for (let done = 0; done < length; ) {
      const { bytesRead } = await readFd(fd, buf, done, length - done, done);
      if (bytesRead === 0) throw new Error(`slot ${path.basename(file)} ends before its content does`);
      done += bytesRead;
    }
    return buf;
  } finally {
    await closeFd(fd);
  }
}

/** The first `length` bytes of a slot file as a stream, for content too big to hold in memory. */
export function streamSlotContent(file: string, length: number): AsyncIterable<Buffer> | Iterable<Buffer> {
  return length === 0 ? [] : (fs.createReadStream(file, { start: 0, end: length - 1 }) as AsyncIterable<Buffer>);
}
