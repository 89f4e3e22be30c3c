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

// Local part: RFC 5322 atext and dots. Domain: letters, digits, dots and hyphens. Parameter values:
// printable ASCII but `+` (xtext) and `=`, so that smtp-server's decoding and re-joining change nothing.
const SIMPLE = /^(MAIL FROM|RCPT TO):<(?:([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+)@([A-Za-z0-9.-]+))?>((?: [A-Za-z0-9-]+(?:=[!-*,-<>-~]+)?)*)$/i;

/** RFC 5321 4.5.3.1.3, as smtp-server counts it: local part, `@` and domain. */
const MAX_PATH = 253;

/**
 * The parse of `command` (`name` being `mail from` or `rcpt to`) when it has the common shape and
 * smtp-server would take it; otherwise undefined, and smtp-server's parser decides.
 */
export function parseSimpleAddressCommand(name: string, command: string): ParsedAddressCommand | undefined {
  const m = SIMPLE.exec(command);
  if (!m || !namesCommand(m[1] ?? '', name)) return undefined;
  const local = m[2];
  const domain = m[3];
  let address = '';
  if (local !== undefined && domain !== undefined) {
    if (local.length + 1 + domain.length > MAX_PATH) return undefined;
    if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return undefined;
    if (domain.startsWith('.') || domain.endsWith('.') || domain.includes('..') || domain.includes('.-') || domain.includes('-.')) return undefined;
    // An A-label: smtp-server turns it into its U-label.
    if (/xn--/i.test(domain)) return undefined;
    address = `${local}@${domain}`;
  }
  const params = m[4];
  if (!params) return { address, args: false };
  const args: Record<string, string | true> = {};
  let duplicate: string | undefined;
  for (const param of params.slice(1).split(' ')) {
    const eq = param.indexOf('=');
    const key = (eq < 0 ? param : param.slice(0, eq)).toUpperCase();
    if (key in args) duplicate = key;
    args[key] = eq < 0 ? true : param.slice(eq + 1);
  }
  return duplicate === undefined ? { address, args } : { address, args, duplicate };
}

/**
 * Whether `written` (MAIL FROM or RCPT TO in any case, as SIMPLE matched it) is the command `name`
 * stands for, as smtp-server compares them (both upper-cased): for the two names its handlers pass,
 * the first letter tells, without two new strings per command.
 */
function namesCommand(written: string, name: string): boolean {
  if (name === 'mail from' || name === 'rcpt to') return (written.charCodeAt(0) | 0x20) === name.charCodeAt(0);
  return written.toUpperCase() === name.toUpperCase();
}
