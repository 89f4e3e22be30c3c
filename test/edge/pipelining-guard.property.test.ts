/**
 * The pipelining guard on any chunking of the client's bytes: a client that keeps RFC 2920 (groups
 * only after EHLO, each ending with a command that waits for its reply) is never taken for a
 * pipeliner, and one that sends past a command that must end a group always is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PipeliningGuard } from '../../src/edge/pipelining-guard.js';

/** Splits `text` into chunks at the given cut points. */
function chunks(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const c of [...at, text.length]) {
    if (c > from) out.push(text.slice(from, c));
    from = Math.max(from, c);
  }
  return out;
}

/**
 * Plays one group the way the edge meets it: its bytes arrive chunk by chunk, interleaved (as `order`
 * says) with the server taking each complete line and replying to it.
 */
function playGroup(guard: PipeliningGuard, lines: string[], cuts: number[], order: boolean[], reply = (line: string): number => (/^DATA/i.test(line) ? 354 : 250)): void {
  const text = lines.map((l) => `${l}\r\n`).join('');
  const pieces = chunks(text, cuts);
  let arrived = 0;
  let taken = 0;
  let next = 0;
  let i = 0;
  while (taken < lines.length) {
    const lineEnd = lines.slice(0, taken + 1).reduce((n, l) => n + l.length + 2, 0);
    const canTake = arrived >= lineEnd;
    if (next < pieces.length && (!canTake || order[i++ % order.length])) {
      guard.received(pieces[next]!.length, false);
      arrived += pieces[next]!.length;
      next += 1;
    } else {
      guard.command(lines[taken]!);
      guard.replied(reply(lines[taken]!));
      taken += 1;
    }
  }
}

const pipelinable = fc.constantFrom('MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.com>', 'RSET');
const ender = fc.constantFrom('DATA', 'NOOP', 'VRFY b', 'QUIT');

describe('PipeliningGuard', () => {
  it('RFC 2920 groups after EHLO, however the bytes are split: never a violation', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(pipelinable, { maxLength: 5 }), ender), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        (groups, cuts, order) => {
          const guard = new PipeliningGuard();
          guard.replied(220);
          playGroup(guard, ['EHLO client.example'], cuts, order);
          for (const [body, last] of groups) {
            // Only commands the server does not answer before the next arrives can move the bytes ahead; after the ender the client waits.
            playGroup(guard, [...body, last], cuts, [true]);
            if (last === 'DATA') {
              guard.received(40, true);
              guard.replied(250);
            }
          }
          assert.equal(guard.violated, false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('bytes behind a command that must end a group, or any pipelining after HELO, are a violation', () => {
    fc.assert(
      fc.property(fc.constantFrom('EHLO client.example', 'HELO client.example', 'DATA', 'NOOP', 'QUIT', 'STARTTLS'), pipelinable, fc.boolean(), (last, extra, sameChunk) => {
        const guard = new PipeliningGuard();
        guard.replied(220);
        if (!/^(EHLO|HELO)/.test(last)) {
          guard.received(21, false);
          guard.command('EHLO client.example');
          guard.replied(250);
        }
        const line = `${last}\r\n`;
        if (sameChunk) {
          guard.received(line.length + extra.length + 2, false);
          guard.command(last);
        } else {
          guard.received(line.length, false);
          guard.command(last);
          guard.received(extra.length + 2, false);
        }
        assert.equal(guard.violated, true);
      }),
      { numRuns: 200 },
    );
    const helo = new PipeliningGuard();
    helo.received(21, false);
    helo.command('HELO client.example');
    helo.replied(250);
    helo.received(60, false);
    helo.command('MAIL FROM:<a@example.org>');
    assert.equal(helo.violated, true, 'no PIPELINING after HELO');
  });

  it('a command verb ends at the first white space character JavaScript knows as \\s, whichever it is', () => {
    for (let c = 0; c <= 0xffff; c++) {
      const guard = new PipeliningGuard();
      guard.received(6, false);
      guard.command('EHLO x');
      guard.replied(250);
      const line = `QUIT${String.fromCharCode(c)}x`;
      guard.received(line.length + 2 + 6, false);
      guard.command(line);
      // QUIT ends a group, so the bytes behind it are a violation; QUIT<c>x is no verb that ends one.
      assert.equal(guard.violated, /\s/.test(String.fromCharCode(c)), `U+${c.toString(16)}`);
    }
  });
});
