/**
 * The edge's own refusal of a command's argument (refuseArgument) read off the line's first word is the
 * refusal the split line gave: for any line, the same reply or none.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { refuseArgument } from '../../src/edge/edge-smtp-server.js';
import { isHeloName } from '../../src/net/helo-name.js';

/** The refusal as first written: the line split into words. */
function byWords(line: string): string | undefined {
  const [verb = '', ...args] = line.split(/[ \t]+/).filter((w) => w !== '');
  const command = verb.toUpperCase();
  const printable = /^[\t\x20-\x7e]*$/.test(line);
  if ((command === 'HELO' || command === 'EHLO') && (!printable || (args.length === 1 && !isHeloName(args[0] ?? '')))) return '501 5.5.4';
  if ((command === 'MAIL' || command === 'RCPT') && /[\x80-\xff]/.test(line)) return '553 5.6.7';
  return undefined;
}

const latin1 = fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b));
const word = fc.oneof(fc.constantFrom('HELO', 'ehlo', 'Mail', 'RCPT', 'rcpt', 'MAILX', 'MAI', 'DATA', 'mail.example', '[1.2.3.4]', 'a+b', 'x\u00e9', 'FROM:<a@b>', ''), fc.array(latin1, { maxLength: 5 }).map((c) => c.join('')));
const line = fc.array(fc.tuple(fc.constantFrom(' ', '\t', '  ', ' \t', ''), word), { maxLength: 4 }).map((ws) => ws.map(([sep, w]) => sep + w).join(''));

it('refuses exactly what the split line refused (property)', () => {
  fc.assert(
    fc.property(line, (l) => {
      const r = refuseArgument(l, [...l].every((c) => c.charCodeAt(0) < 0x80));
      assert.equal(r && `${r.code} ${r.enhanced}`, byWords(l), JSON.stringify(l));
    }),
    { numRuns: 5000 },
  );
});
