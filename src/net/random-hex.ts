/**
 * Random bits as hex, cut from a block of random bytes filled for hundreds of callers at a time. Each
 * `randomBytes` call is a trip into OpenSSL's generator, which calls getpid() every time to notice a
 * fork: a system call per session id, queue id and Maildir name, when one per block is enough.
 */
import { randomBytes } from 'node:crypto';

const BLOCK_BYTES = 4096;

let block = Buffer.alloc(0);
let at = 0;

/** `bytes` random bytes as 2 × `bytes` lowercase hex digits. */
export function randomHex(bytes: number): string {
  if (at + bytes > block.length) {
    block = randomBytes(Math.max(BLOCK_BYTES, bytes));
    at = 0;
  }
  const hex = block.toString('hex', at, at + bytes);
  at += bytes;
  return hex;
}
