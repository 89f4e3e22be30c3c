import { canonicalDomain } from './domain.js';

/** The last address normalized, and its normal form. */
let lastNormalized = { address: '', normal: '' };

/**
 * Mail addresses as the filters compare them. The domain is case-insensitive (DNS) and in its
 * canonical (A-label) form, so an IDN matches whichever form it was written in. An unquoted
 * local part is compared case-insensitively too, as every mail administrator expects. A quoted local
 * part is compared exactly as written, unless its quotes are needless (`"ted"` is the RFC 5321 dot-atom
 * `ted`), in which case they are dropped so that quoting cannot dodge a pattern.
 */
export function normalizeAddress(s: string): string {
  // One message's address is compared by several filters in a row (sender filter, then From:; exceptions, blocked recipients, directory).
  if (s === lastNormalized.address) return lastNormalized.normal;
  const bare = stripBrackets(s);
  const parts = splitAddress(bare);
  const normal = parts ? `${canonicalLocal(parts.local)}@${canonicalDomain(parts.domain)}` : bare.toLowerCase();
  lastNormalized = { address: s, normal };
  return normal;
}

/**
 * The address with its domain in A-labels and the local part as written: smtp-server hands us the
 * U-label form of a punycode domain, and this is what the client wrote (or, if it wrote U-labels,
 * the form every back end can take without SMTPUTF8). Domain literals and addresses without a domain
 * (the blank sender, `postmaster`) are returned unchanged.
 */
export function withCanonicalDomain(address: string): string {
  const parts = splitAddress(address);
  if (!parts || parts.domain.startsWith('[')) return address;
  return `${parts.local}@${canonicalDomain(parts.domain)}`;
}

/**
 * The address with its domain in ASCII (A-labels), as it may go to a server that did not offer
 * SMTPUTF8: smtp-server hands `user@xn--bcher-kva.example` on as `user@bücher.example`. Undefined when
 * it cannot be written in ASCII (a non-ASCII local part, a domain that is no valid IDN).
 */
export function asciiAddress(address: string): string | undefined {
  if (ASCII.test(address)) return address;
  const parts = splitAddress(address);
  if (!parts || !ASCII.test(parts.local)) return undefined;
  const domain = canonicalDomain(parts.domain);
  return ASCII.test(domain) ? `${parts.local}@${domain}` : undefined;
}

/** The address without surrounding white space and angle brackets: ` <a@b> ` → `a@b`. */
export function stripBrackets(s: string): string {
  const t = s.trim();
  return (t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t).trim();
}

/**
 * Split at the `@` that separates the domain, understanding a quoted local part that contains `@`
 * or escaped quotes. The local part is returned as written (quotes kept); a trailing dot of the
 * domain is dropped. Undefined when there is no non-empty local part and domain.
 */
export function splitAddress(address: string): { local: string; domain: string } | undefined {
  let at: number;
  if (address.startsWith('"')) {
    const close = closingQuote(address);
    if (close < 0 || address[close + 1] !== '@') return undefined;
    at = close + 1;
  } else {
    at = address.lastIndexOf('@');
  }
  if (at <= 0 || at === address.length - 1) return undefined;
  const domain = address.slice(at + 1, address.endsWith('.') ? -1 : undefined);
  if (domain === '') return undefined;
  return { local: address.slice(0, at), domain };
}

/** Whether a local part is a quoted string (`"Ted Bremer"`) rather than a dot-atom. */
export function isQuotedLocal(local: string): boolean {
  return local.startsWith('"');
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** The comparison form of a local part: see normalizeAddress. */
function canonicalLocal(local: string): string {
  if (!isQuotedLocal(local)) return local.toLowerCase();
  const inner = local.slice(1, -1).replace(/\\(.)/g, '$1');
  return DOT_ATOM.test(inner) ? inner.toLowerCase() : local;
}

/** Index of the quote closing the quoted string that opens `s`, honouring backslash escapes; -1 if none. */
function closingQuote(s: string): number {
  for (let i = 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i;
  }
  return -1;
}
