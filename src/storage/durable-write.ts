/**
 * Durable writes, the one way Badmail and the bundled engine put bytes on disk: a new file is written
 * and fsynced under a temporary name, renamed into place, and the directory that now names it is
 * fsynced, so after a crash the target is either complete or absent. `fsync: false` (the engine's
 * `transport.fsync`) skips the syncs, never the rename.
 */
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/** A write to disk that failed: no SMTP reply of its own, each caller says what it means to its peer. */
export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** fsyncs a directory, so a rename or create inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes the chunks to a file that must not exist yet (mode 0600), fsynced when asked; resolves to the bytes written. */
export async function writeNewFile(file: string, chunks: AsyncIterable<Buffer> | Iterable<Buffer>, fsync: boolean): Promise<number> {
  const handle = await open(file, 'wx', 0o600);
  let written = 0;
  try {
    for await (const chunk of chunks) {
      await handle.write(chunk);
      written += chunk.length;
    }
    if (fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  return written;
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
