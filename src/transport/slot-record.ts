/**
 * The record a slot file holds: a received message's content, then its envelope (the queue record as
 * JSON), then a fixed trailer: the two lengths, a CRC-32 of everything before it, and a magic. The
 * content comes first so it can be streamed to disk as it arrives; the trailer comes last so a record
 * is complete only once its last bytes are written. A slot whose bytes do not decode (empty, torn by a
 * crash before its fsync, or overwritten in part) holds no record: its message was never answered 250.
 * One rule decides what is a record, whether the bytes are in memory (`decodeSlotRecord`) or in a file
 * read in bounded chunks (`readSlotRecord`, used at start, where a frozen queue may hold thousands of
 * large records): `trailerOf` checks the frame, `tailChecks` the CRC once the content's is known.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';

const openFd = promisify(fs.open);
const readFd = promisify(fs.read);
const fstatFd = promisify(fs.fstat);
const closeFd = promisify(fs.close);

const MAGIC = Buffer.from('PCSLOT1\n', 'latin1');
/** content length (8) + envelope length (4) + CRC-32 (4) + magic (8). */
export const TRAILER_BYTES = 24;
/** Content read at once when checking a slot file's CRC: memory per slot, whatever its size. */
const CHUNK_BYTES = 64 * 1024;

/** What follows the content: the envelope and the trailer. `contentCrc` is the CRC-32 of the content (0 for none). */
export function recordTail(contentCrc: number, contentLength: number, envelope: Buffer): Buffer {
  const tail = Buffer.alloc(envelope.length + TRAILER_BYTES);
  envelope.copy(tail, 0);
  const lengths = envelope.length;
  tail.writeBigUInt64BE(BigInt(contentLength), lengths);
  tail.writeUInt32BE(envelope.length, lengths + 8);
  // The lengths are checked too: moving bytes from the content to the envelope keeps the same stream.
  tail.writeUInt32BE(crc32(tail.subarray(0, lengths + 12), contentCrc), lengths + 12);
  MAGIC.copy(tail, lengths + 16);
  return tail;
}

/** A whole record, for writers that hold the content in memory. */
export function encodeSlotRecord(content: Buffer, envelope: Buffer): Buffer {
  return Buffer.concat([content, recordTail(crc32(content), content.length, envelope)]);
}

/** The content length a trailer states, if it ends a record of `size` bytes (magic, and lengths that add up). */
function trailerOf(trailer: Buffer, size: number): number | undefined {
  if (size < TRAILER_BYTES || !trailer.subarray(16).equals(MAGIC)) return undefined;
  const contentLength = trailer.readBigUInt64BE(0);
  if (contentLength + BigInt(trailer.readUInt32BE(8)) !== BigInt(size - TRAILER_BYTES)) return undefined;
  return Number(contentLength);
}

/** Whether the bytes after the content (envelope and trailer) carry the CRC of the content's CRC and themselves. */
function tailChecks(tail: Buffer, contentCrc: number): boolean {
  const crcAt = tail.length - TRAILER_BYTES + 12;
  return crc32(tail.subarray(0, crcAt), contentCrc) === tail.readUInt32BE(crcAt);
}

/** The content and envelope of a complete record, or undefined for anything else (never a part of one). */
export function decodeSlotRecord(bytes: Buffer): { content: Buffer; envelope: Buffer } | undefined {
  const cut = trailerOf(bytes.subarray(bytes.length - TRAILER_BYTES), bytes.length);
  if (cut === undefined || !tailChecks(bytes.subarray(cut), crc32(bytes.subarray(0, cut)))) return undefined;
  return { content: bytes.subarray(0, cut), envelope: bytes.subarray(cut, bytes.length - TRAILER_BYTES) };
}

/**
 * The content length and envelope of the record in a slot file, or undefined when it holds none, as
 * `decodeSlotRecord` would decide on its bytes. The content stays in the file: it is read in chunks of
 * `CHUNK_BYTES` for its CRC, so memory is one chunk and one envelope (which the queue's index keeps anyway).
 */
export async function readSlotRecord(file: string): Promise<{ contentLength: number; envelope: Buffer } | undefined> {
  const fd = await openFd(file, 'r');
  try {
    const { size } = await fstatFd(fd);
    if (size < TRAILER_BYTES) return undefined;
    const contentLength = trailerOf(await readSlotBytes(fd, Buffer.alloc(TRAILER_BYTES), size - TRAILER_BYTES), size);
    if (contentLength === undefined) return undefined;
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, contentLength));
    let crc = 0;
    for (let at = 0; at < contentLength; at += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, contentLength - at));
      crc = crc32(await readSlotBytes(fd, part, at), crc);
    }
    const tail = await readSlotBytes(fd, Buffer.alloc(size - contentLength), contentLength);
    if (!tailChecks(tail, crc)) return undefined;
    return { contentLength, envelope: tail.subarray(0, tail.length - TRAILER_BYTES) };
  } finally {
    await closeFd(fd);
  }
}

/** Fills `buf` from `position` of a slot file; a file that ends first (changed while read) fails. */
export async function readSlotBytes(fd: number, buf: Buffer, position: number): Promise<Buffer> {
  for (let done = 0; done < buf.length; ) {
    const { bytesRead } = await readFd(fd, buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`slot file ends at byte ${position + done}, before the ${buf.length} bytes read from ${position}`);
    done += bytesRead;
  }
  return buf;
}
