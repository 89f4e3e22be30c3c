/**
 * Session IDs in smtp-server's own form (80 random bits in base 32, 16 characters), cut from a block
 * of random bytes filled for hundreds of sessions at a time: smtp-server asks `randomBytes` once per
 * connection, and each such call cost about 4 µs here, half of what a session's policy without rules costs.
 */
import { randomBytes } from 'node:crypto';

const ID_BYTES = 10;
const BLOCK_BYTES = ID_BYTES * 400;

let block = Buffer.alloc(0);
let at = 0;

export function newSessionId(): string {
  if (at + ID_BYTES > block.length) {
    block = randomBytes(BLOCK_BYTES);
    at = 0;
  }
  const hex = block.toString('hex', at, at + ID_BYTES);
  at += ID_BYTES;
  return BigInt(`0x${hex}`).toString(32).padStart(16, '0');
}
