/**
 * A message held whole while its DKIM signatures and DMARC are checked, so the edge's
 * Authentication-Results can go on top of it: in memory up to `memoryBytes`, then in a temporary
 * file (mode 0600, in a directory of its own) that `dispose` always removes. Writes are awaited, so a
 * slow disk slows the client rather than growing the edge's memory.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { noteMessageBytes } from './gc-pacer.js';

/** Bytes gathered before one write to the file: one system call per this much, not per socket read. */
const WRITE_BATCH = 64 * 1024;

export class MessageSpool {
  private chunks: Buffer[] = [];
  private held = 0;
  private file: { dir: string; path: string; handle: FileHandle | undefined } | undefined;
  /** Bytes spooled. */
  size = 0;

  constructor(
    private readonly memoryBytes: number,
    private readonly dir: string = tmpdir(),
  ) {}

  /** Whether the message outgrew memory and lies in a file. */
  get onDisk(): boolean {
    return this.file !== undefined;
  }

  async write(chunk: Buffer): Promise<void> {
    this.chunks.push(chunk);
    this.held += chunk.length;
    this.size += chunk.length;
    if (!this.file && this.size <= this.memoryBytes) return;
    if (!this.file) {
      const dir = await mkdtemp(path.join(this.dir, 'portcullis-spool-'));
      this.file = { dir, path: path.join(dir, 'message'), handle: undefined };
      this.file.handle = await open(this.file.path, 'wx', 0o600);
    }
    if (this.held >= WRITE_BATCH) await this.flush();
  }

  /** The whole message, from the start; may be read more than once. */
  async *read(): AsyncGenerator<Buffer> {
    if (!this.file) {
      yield* this.chunks;
      return;
    }
    await this.flush();
    for await (const chunk of createReadStream(this.file.path, { highWaterMark: WRITE_BATCH }) as AsyncIterable<Buffer>) {
      // Each pass over the file (the checks, then the relay) makes as much young garbage as the socket did.
      noteMessageBytes(chunk.length);
      yield chunk;
    }
  }

  /** Frees the memory and removes the file. */
  async dispose(): Promise<void> {
    this.chunks = [];
    const file = this.file;
    this.file = undefined;
    if (!file) return;
    // A failed close leaves nothing to keep: the directory goes either way.
    await file.handle?.close().catch(() => undefined);
    await rm(file.dir, { recursive: true, force: true });
  }

  private async flush(): Promise<void> {
    const handle = this.file?.handle;
    if (!handle || this.chunks.length === 0) return;
    const batch = this.chunks;
    this.chunks = [];
    this.held = 0;
    await handle.writev(batch);
  }
}
