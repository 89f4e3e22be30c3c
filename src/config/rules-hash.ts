/** A short hash naming a rule-set generation in decision records, so replay and explain can tell whether rules changed. */
import { createHash } from 'node:crypto';
import type { Rules } from './schema.js';

const hashes = new WeakMap<Rules, string>();

/** The first 16 hex digits of the SHA-256 of the validated rule set; computed once per generation. */
export function rulesHash(rules: Rules): string {
  let h = hashes.get(rules);
  if (h === undefined) {
    h = createHash('sha256').update(JSON.stringify(rules)).digest('hex').slice(0, 16);
    hashes.set(rules, h);
  }
  return h;
}
