/**
 * MAIL FROM and RCPT TO in the shape nearly every client writes them (`MAIL FROM:<local@domain>` with
 * plain `KEY` or `KEY=value` parameters), parsed to exactly what smtp-server's own parser
 * (`_parseAddressCommand`) returns for them, without its general path: it splits and re-joins the
 * line, decodes xtext and runs `punycode.toUnicode` on the domain of every address, a few microseconds
 * a command. Anything outside that shape (spaces around the address, IP literals, A-labels, xtext,
 * `postmaster`, non-ASCII, whatever smtp-server refuses) is left to smtp-server: `undefined`.
 */

/** What smtp-server's parser returns for an address command it takes. */
export interface ParsedAddressCommand {
  address: string;
  args: Record<string, string | true> | false;
  /** A parameter given twice: smtp-server's handler refuses the command. */
  duplicate?: string;
}

// The shape, read off the line character by character (a regular expression with four captures, the
// address joined again from two of them and a second expression for A-labels cost about 190 ns a
// command): the verb in any case; the local part RFC 5322 atext and dots; the domain letters, digits,
// dots and hyphens; parameter values printable ASCII but `+` (xtext) and `=`, so that smtp-server's
// decoding and re-joining change nothing.
const PARAMS = /(?: [A-Za-z0-9-]+(?:=[!-*,-<>-~]+)?)+$/y;

/** RFC 5321 4.5.3.1.3, as smtp-server counts it: local part, `@` and domain. */
const MAX_PATH = 253;

const DOT = 0x2e;
const HYPHEN = 0x2d;

/**
 * The parse of `command` (`name` being `mail from` or `rcpt to`, as smtp-server's handlers pass it)
 * when it has the common shape and smtp-server would take it; otherwise undefined, and smtp-server's
 * parser decides.
 */
export function parseSimpleAddressCommand(name: string, command: string): ParsedAddressCommand | undefined {
  const verb = name === 'mail from' ? 'mail from:<' : name === 'rcpt to' ? 'rcpt to:<' : undefined;
  if (verb === undefined || !startsWithVerb(command, verb)) return undefined;
  const open = verb.length;
  let address = '';
  let close = open;
  if (command.charCodeAt(open) !== 0x3e) {
    const at = runEnd(command, open, LOCAL_CHARS);
    if (at === open || command.charCodeAt(at) !== 0x40) return undefined;
    close = runEnd(command, at + 1, DOMAIN_CHARS);
    if (close === at + 1 || command.charCodeAt(close) !== 0x3e) return undefined;
    if (close - open > MAX_PATH) return undefined;
    if (!plainLocal(command, open, at) || !plainDomain(command, at + 1, close)) return undefined;
    address = command.slice(open, close);
  }
  if (close + 1 === command.length) return { address, args: false };
  PARAMS.lastIndex = close + 1;
  if (!PARAMS.test(command)) return undefined;
  const args: Record<string, string | true> = {};
  let duplicate: string | undefined;
  for (const param of command.slice(close + 2).split(' ')) {
    const eq = param.indexOf('=');
    const key = (eq < 0 ? param : param.slice(0, eq)).toUpperCase();
    if (key in args) duplicate = key;
    args[key] = eq < 0 ? true : param.slice(eq + 1);
  }
  return duplicate === undefined ? { address, args } : { address, args, duplicate };
}

/** Whether `command` opens with `verb` (lower case), its ASCII letters in any case. */
function startsWithVerb(command: string, verb: string): boolean {
  if (command.length <= verb.length) return false;
  for (let i = 0; i < verb.length; i++) {
    const v = verb.charCodeAt(i);
    const c = command.charCodeAt(i);
    // Only the upper case of an ASCII letter matches it with its lower-case bit (0x20) set.
    if (c !== v && !(v >= 0x61 && v <= 0x7a && (c | 0x20) === v)) return false;
  }
  return true;
}

/** Where the run of characters in `set` (an asciiSet) from `from` ends. */
function runEnd(text: string, from: number, set: Uint8Array): number {
  let i = from;
  for (let c = text.charCodeAt(i); c < 0x80 && set[c] === 1; c = text.charCodeAt(i)) i += 1;
  return i;
}

/** A table of the ASCII characters that are letters, digits or one of `others`. */
function asciiSet(others: string): Uint8Array {
  const set = new Uint8Array(128);
  for (const c of `ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789${others}`) set[c.charCodeAt(0)] = 1;
  return set;
}

/** RFC 5322 atext, and the dot. */
const LOCAL_CHARS = asciiSet("!#$%&'*+/=?^_`{|}~.-");
const DOMAIN_CHARS = asciiSet('.-');

/** A local part with no dot at either end and none doubled. */
function plainLocal(text: string, from: number, to: number): boolean {
  if (text.charCodeAt(from) === DOT || text.charCodeAt(to - 1) === DOT) return false;
  for (let i = from + 1; i < to; i++) if (text.charCodeAt(i) === DOT && text.charCodeAt(i - 1) === DOT) return false;
  return true;
}

/** A domain with no dot at either end, no empty label, no label opening or closing with a hyphen next to a dot, and no A-label (smtp-server turns it into its U-label). */
function plainDomain(text: string, from: number, to: number): boolean {
  if (text.charCodeAt(from) === DOT || text.charCodeAt(to - 1) === DOT) return false;
  for (let i = from + 1; i < to; i++) {
    const c = text.charCodeAt(i);
    const before = text.charCodeAt(i - 1);
    if ((c === DOT && (before === DOT || before === HYPHEN)) || (c === HYPHEN && before === DOT)) return false;
    if (c === HYPHEN && before === HYPHEN && i >= from + 3 && (text.charCodeAt(i - 2) | 0x20) === 0x6e && (text.charCodeAt(i - 3) | 0x20) === 0x78) return false;
  }
  return true;
}
