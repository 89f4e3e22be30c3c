/**
 * Random bits (as hex, or the bytes themselves), cut from a block of random bytes filled for hundreds
 * of callers at a time. Each `randomBytes` call is a trip into OpenSSL's generator, which calls
 * getpid() every time to notice a fork: a system call per session id, queue id and Maildir name, when
 * one per block is enough.
 */
import { randomBytes } from 'node:crypto';

const BLOCK_BYTES = 4096;

let block = Buffer.alloc(0);
let at = 0;

/** `bytes` random bytes as 2 × `bytes` lowercase hex digits. */
export function randomHex(bytes: number): string {
  const from = take(bytes);
  return block.toString('hex', from, from + bytes);
}

/** `bytes` random bytes, a view of the block (a refill makes a new block, so the view's bytes never change). */
export function randomBytesView(bytes: number): Buffer {
  const from = take(bytes);
  return block.subarray(from, from + bytes);
}

/** Where the next `bytes` unused bytes start, refilling the block first when it has too few left. */
function take(bytes: number): number {
  if (at + bytes > block.length) {
    block = randomBytes(Math.max(BLOCK_BYTES, bytes));
    at = 0;
  }
  const from = at;
  at += bytes;
  return from;
}
