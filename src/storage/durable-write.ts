/**
 * Durable writes, the one way Badmail and the bundled engine put bytes on disk: a new file is written
 * and fsynced under a temporary name, renamed into place, and the directory that now names it is
 * fsynced, so after a crash the target is either complete or absent. `fsync: false` (the engine's
 * `transport.fsync`) skips the syncs, never the rename.
 */
import fs from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

// Plain descriptors, not fs/promises FileHandles: at a few files per message the handles' own
// upkeep (objects, close tracking, GC) showed up as a large share of the engine's CPU per message.
const openFd = promisify(fs.open);
const writeFd = promisify(fs.write);
const fsyncFd = promisify(fs.fsync);
const closeFd = promisify(fs.close);

/** A write to disk that failed: no SMTP reply of its own, each caller says what it means to its peer. */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** A directory's syncs: the one running, and the one that will run after it for whoever asks meanwhile. */
interface DirSyncs {
  running: Promise<void>;
  next?: Promise<void>;
}

const dirSyncs = new Map<string, DirSyncs>();

/**
 * fsyncs a directory, so a rename or create inside it survives a crash. Group commit: callers that ask
 * while a sync of the same directory is running share one sync started after it ends (their entries
 * may have missed the running one), so N concurrent arrivals cost about two directory fsyncs, not N.
 */
export function fsyncDir(dir: string): Promise<void> {
  const syncs = dirSyncs.get(dir);
  if (!syncs) return startDirSync(dir);
  syncs.next ??= syncs.running.then(
    () => startDirSync(dir),
    () => startDirSync(dir),
  );
  return syncs.next;
}

function startDirSync(dir: string): Promise<void> {
  const syncs: DirSyncs = { running: syncDirNow(dir) };
  dirSyncs.set(dir, syncs);
  syncs.running.then(
    () => settle(dir, syncs),
    () => settle(dir, syncs),
  );
  return syncs.running;
}

/** Forgets a finished sync unless callers are already waiting for the next one. */
function settle(dir: string, syncs: DirSyncs): void {
  if (dirSyncs.get(dir) === syncs && syncs.next === undefined) dirSyncs.delete(dir);
}

async function syncDirNow(dir: string): Promise<void> {
  const fd = await openFd(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/** Writes the chunks to a file that must not exist yet (mode 0600), fsynced when asked; resolves to the bytes written. */
export async function writeNewFile(file: string, chunks: AsyncIterable<Buffer> | Iterable<Buffer>, fsync: boolean): Promise<number> {
  const fd = await openFd(file, 'wx', 0o600);
  let written = 0;
  try {
    for await (const chunk of chunks) {
      await writeAll(fd, chunk);
      written += chunk.length;
    }
    if (fsync) await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
  return written;
}

/** Writes the whole chunk at `position`, else at the descriptor's own (a write may take less than it was given). */
export async function writeAll(fd: number, chunk: Buffer, position?: number): Promise<void> {
  for (let done = 0; done < chunk.length; ) {
    done += (await writeFd(fd, chunk, done, chunk.length - done, position === undefined ? null : position + done)).bytesWritten;
  }
}

/** Renames a finished file or directory into place and fsyncs the directory that now holds it. */
export async function publish(tmp: string, target: string, fsync: boolean): Promise<void> {
  await rename(tmp, target);
  if (fsync) await fsyncDir(path.dirname(target));
}

/** Writes `chunks` to `tmp`, then publishes it as `target`; a failure removes `tmp` and rethrows. */
export async function writeDurably(
  tmp: string,
  target: string,
  chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
  fsync: boolean,
): Promise<number> {
  try {
    const written = await writeNewFile(tmp, chunks, fsync);
    await publish(tmp, target, fsync);
    return written;
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
