/**
 * A command line's verb, upper-cased. Every command line has its verb read (by the adapter's dispatch
 * and the edge's argument check), and `slice` then `toUpperCase` made two new strings each time: four
 * commands a message, about 35 ns each. The verbs of a connection's usual commands, written in ASCII
 * letters of any case, are returned as constants; any other word takes the general path, so the result
 * is always `line.slice(start, end).toUpperCase()`.
 */

/** `line.slice(start, end).toUpperCase()`. */
export function upperWord(line: string, start: number, end: number): string {
  return end - start === 4 ? (knownVerb(line, start) ?? line.slice(start, end).toUpperCase()) : line.slice(start, end).toUpperCase();
}

const A = 0x41;
const Z = 0x5a;

/** The four characters from `at` upper-cased as one number when all are ASCII letters, else -1. */
function packed(line: string, at: number): number {
  let key = 0;
  for (let i = at; i < at + 4; i++) {
    // Only an ASCII letter lands on A-Z with its lower-case bit (0x20) cleared.
    const c = line.charCodeAt(i) & ~0x20;
    if (c < A || c > Z) return -1;
    key = (key << 8) | c;
  }
  return key;
}

const MAIL = packed('MAIL', 0);
const RCPT = packed('RCPT', 0);
const DATA = packed('DATA', 0);
const RSET = packed('RSET', 0);
const NOOP = packed('NOOP', 0);
const QUIT = packed('QUIT', 0);
const HELO = packed('HELO', 0);
const EHLO = packed('EHLO', 0);

function knownVerb(line: string, at: number): string | undefined {
  switch (packed(line, at)) {
    case MAIL:
      return 'MAIL';
    case RCPT:
      return 'RCPT';
    case DATA:
      return 'DATA';
    case RSET:
      return 'RSET';
    case NOOP:
      return 'NOOP';
    case QUIT:
      return 'QUIT';
    case HELO:
      return 'HELO';
    case EHLO:
      return 'EHLO';
    default:
      return undefined;
  }
}
