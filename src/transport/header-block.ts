import { open } from 'node:fs/promises';

/** The header block of a stored message (up to the first empty line, at most 256 KiB). */
export async function readHeaderBlock(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(256 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('latin1');
    const end = text.search(/\r?\n\r?\n/);
    return end < 0 ? text : text.slice(0, end);
  } finally {
    await handle.close();
  }
}

/** Whether a stored message's content can be read now (the error itself is the caller's to report). */
export function isReadable(file: string): Promise<boolean> {
  return readHeaderBlock(file).then(
    () => true,
    () => false,
  );
}
