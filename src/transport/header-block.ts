import fs from 'node:fs';
import { promisify } from 'node:util';

// A plain descriptor, not a FileHandle: read once per message, the handle's upkeep costs more than the read.
const openFd = promisify(fs.open);
const readFd = promisify(fs.read);
const closeFd = promisify(fs.close);

/** The first read: enough for the header block of almost every message. */
const FIRST_READ = 16 * 1024;
const MAX_HEADER = 256 * 1024;

/** The header block of a message's bytes held in memory, as `readHeaderBlock` gives it from the file. */
export function headerBlockOf(content: Buffer): string {
  const text = content.subarray(0, MAX_HEADER).toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  return end >= 0 ? text.slice(0, end) : text;
}

/** The header block of a stored message (up to the first empty line, at most 256 KiB). */
export async function readHeaderBlock(file: string): Promise<string> {
  const fd = await openFd(file, 'r');
  try {
    let text = '';
    // A small read first, the rest of the 256 KiB only for a header block that does not end in it.
    for (let size = FIRST_READ; ; size = MAX_HEADER) {
      const buf = Buffer.allocUnsafe(size);
      const { bytesRead } = await readFd(fd, buf, 0, size, 0);
      text = buf.subarray(0, bytesRead).toString('latin1');
      const end = text.search(/\r?\n\r?\n/);
      if (end >= 0) return text.slice(0, end);
      if (bytesRead < size || size === MAX_HEADER) return text;
    }
  } finally {
    await closeFd(fd);
  }
}

/** Whether a stored message's content can be read now (the error itself is the caller's to report). */
export function isReadable(file: string): Promise<boolean> {
  return readHeaderBlock(file).then(
    () => true,
    () => false,
  );
}
