/**
 * A command line's verb (upperWord) is the word upper-cased as `toUpperCase` does it, for any line and
 * range: the verbs returned as constants, and every other word (non-ASCII letters that upper-case to
 * ASCII ones, such as the dotless i, included).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { upperWord } from '../../src/net/command-verb.js';

const verbs = ['MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT', 'HELO', 'EHLO'];
// Letters in any case, their neighbours in ASCII (@ [ ` {), and characters that upper-case to ASCII letters.
const near = fc.constantFrom(...'MAILRCPTDATSENOQUHmailrcptdatsenoquh@[`{ \t\u0131\u017f\u00e9\u00c0\u0141\u212a'.split(''));
const word = fc.oneof(
  fc.constantFrom(...verbs, ...verbs.map((v) => v.toLowerCase()), 'Mail', 'rCpT', 'MAILX', 'MAI', 'ma\u0131l', 'QU\u0131T'),
  fc.array(near, { maxLength: 6 }).map((c) => c.join('')),
  fc.string({ maxLength: 6 }),
);

it('upper-cases a word exactly as slice and toUpperCase do (property)', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 3 }), word, fc.string({ maxLength: 5 }), (before, w, after) => {
      const line = before + w + after;
      const start = before.length;
      const end = start + w.length;
      assert.equal(upperWord(line, start, end), line.slice(start, end).toUpperCase(), JSON.stringify([line, start, end]));
    }),
    { numRuns: 20000 },
  );
});

it('gives each verb of a transaction in any case of its letters', () => {
  for (const v of verbs) {
    for (let mask = 0; mask < 16; mask++) {
      const written = [...v].map((c, i) => (mask & (1 << i) ? c.toLowerCase() : c)).join('');
      assert.equal(upperWord(`${written} x`, 0, 4), v);
    }
  }
});
