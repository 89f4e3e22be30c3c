/**
 * The record a slot file holds: a received message's content, then its envelope (the queue record as
 * JSON), then a fixed trailer: the two lengths, a CRC-32 of everything before it, and a magic. The
 * content comes first so it can be streamed to disk as it arrives; the trailer comes last so a record
 * is complete only once its last bytes are written. A slot whose bytes do not decode (empty, torn by a
 * crash before its fsync, or overwritten in part) holds no record: its message was never answered 250.
 */
import { crc32 } from 'node:zlib';

const MAGIC = Buffer.from('PCSLOT1\n', 'latin1');
/** content length (8) + envelope length (4) + CRC-32 (4) + magic (8). */
export const TRAILER_BYTES = 24;

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

/** The content and envelope of a complete record, or undefined for anything else (never a part of one). */
export function decodeSlotRecord(bytes: Buffer): { content: Buffer; envelope: Buffer } | undefined {
  if (bytes.length < TRAILER_BYTES) return undefined;
  const trailer = bytes.length - TRAILER_BYTES;
  if (!bytes.subarray(trailer + 16).equals(MAGIC)) return undefined;
  const contentLength = bytes.readBigUInt64BE(trailer);
  const envelopeLength = bytes.readUInt32BE(trailer + 8);
  if (contentLength + BigInt(envelopeLength) !== BigInt(trailer)) return undefined;
  if (crc32(bytes.subarray(0, trailer + 12)) !== bytes.readUInt32BE(trailer + 12)) return undefined;
  const cut = Number(contentLength);
  return { content: bytes.subarray(0, cut), envelope: bytes.subarray(cut, trailer) };
}
