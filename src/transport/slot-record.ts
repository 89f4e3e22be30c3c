/**
 * The record a slot file holds: a received message's content, then its envelope (the queue record as
 * JSON), then a fixed trailer: the two lengths, a CRC-32 of everything before it, and a magic. The
 * content comes first so it can be streamed to disk as it arrives; the trailer comes last so a record
 * is complete only once its last bytes are written. A slot whose bytes do not decode (empty, torn by a
 * crash before its fsync, or overwritten in part) holds no record: its message was never answered 250.
 * A slot holds one such record or several back to back (a group committed with one sync, `slot-group.ts`).
 * One rule decides what is a record, whether the bytes are in memory (`decodeSlotRecords`) or in a file
 * read in bounded chunks (`readSlotRecords`, used at start, where a frozen queue may hold thousands of
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

/**
 * Where the record whose trailer ends at byte `end` starts, and its content's length: undefined unless
 * the magic is there and the lengths fit before `end`.
 */
function trailerOf(trailer: Buffer, end: number): { offset: number; contentLength: number } | undefined {
  if (end < TRAILER_BYTES || !trailer.subarray(16).equals(MAGIC)) return undefined;
  const contentLength = trailer.readBigUInt64BE(0);
  const offset = BigInt(end - TRAILER_BYTES) - contentLength - BigInt(trailer.readUInt32BE(8));
  return offset < 0n ? undefined : { offset: Number(offset), contentLength: Number(contentLength) };
}

/** Whether the bytes after the content (envelope and trailer) carry the CRC of the content's CRC and themselves. */
function tailChecks(tail: Buffer, contentCrc: number): boolean {
  const crcAt = tail.length - TRAILER_BYTES + 12;
  return crc32(tail.subarray(0, crcAt), contentCrc) === tail.readUInt32BE(crcAt);
}

/** A complete record in a slot: where it starts in the file, its content and its envelope. */
export interface SlotRecord {
  offset: number;
  content: Buffer;
  envelope: Buffer;
}

/**
 * The records of a slot's bytes, in file order. A slot holds one record or a group of them back to back,
 * written in one call and synced once: they are found from the end backwards, each trailer giving its
 * record's start, and the first bytes that do not end in a complete record end the search (a torn
 * group, never answered 250, holds nothing past its tear; nothing before a tear is read as a record).
 */
export function decodeSlotRecords(bytes: Buffer): SlotRecord[] {
  const records: SlotRecord[] = [];
  for (let end = bytes.length; end > 0; ) {
    const frame = trailerOf(bytes.subarray(end - TRAILER_BYTES, end), end);
    if (frame === undefined) break;
    const cut = frame.offset + frame.contentLength;
    if (!tailChecks(bytes.subarray(cut, end), crc32(bytes.subarray(frame.offset, cut)))) break;
    records.push({ offset: frame.offset, content: bytes.subarray(frame.offset, cut), envelope: bytes.subarray(cut, end - TRAILER_BYTES) });
    end = frame.offset;
  }
  // Found from the end: put back in file order.
  return records.reverse();
}

/**
 * The records of a slot file (offset, content length and envelope each), as `decodeSlotRecords` would
 * find them in its bytes. The content stays in the file: it is read in chunks of `CHUNK_BYTES` for its
 * CRC, so memory is one chunk and the envelopes (which the queue's index keeps anyway).
 */
export async function readSlotRecords(file: string): Promise<{ offset: number; contentLength: number; envelope: Buffer }[]> {
  const fd = await openFd(file, 'r');
  try {
    const records: { offset: number; contentLength: number; envelope: Buffer }[] = [];
    for (let end = (await fstatFd(fd)).size; end >= TRAILER_BYTES; ) {
      const frame = trailerOf(await readSlotBytes(fd, Buffer.alloc(TRAILER_BYTES), end - TRAILER_BYTES), end);
      if (frame === undefined) break;
      const { offset, contentLength } = frame;
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, contentLength));
      let crc = 0;
      for (let at = 0; at < contentLength; at += chunk.length) {
        const part = chunk.subarray(0, Math.min(chunk.length, contentLength - at));
        crc = crc32(await readSlotBytes(fd, part, offset + at), crc);
      }
      const tail = await readSlotBytes(fd, Buffer.alloc(end - offset - contentLength), offset + contentLength);
      if (!tailChecks(tail, crc)) break;
      records.push({ offset, contentLength, envelope: tail.subarray(0, tail.length - TRAILER_BYTES) });
      end = offset;
    }
    return records.reverse();
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
