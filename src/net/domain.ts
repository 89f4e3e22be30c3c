import { domainToASCII } from 'node:url';

/**
 * The one form in which a domain is compared everywhere (rule validation, relay protection, the
 * directory, the engine's routing): lower case, no trailing dot, internationalised labels as
 * A-labels, so `Bücher.test`, `bücher.test.` and `xn--bcher-kva.test` are one domain. smtp-server
 * hands us the U-label form of what a client wrote as punycode, and an administrator may write
 * either. A name that is not a valid IDN stays as written (lower-cased), so validation still refuses
 * it and it can never equal a valid domain.
 */
export function canonicalDomain(domain: string): string {
  const trimmed = domain.trim();
  const d = trimmed.endsWith('.') ? trimmed.slice(0, -1) : trimmed;
  // An ASCII name is already in A-label form; converting it would only cost time on every lookup.
  if (isAscii(d)) return d.toLowerCase();
  return domainToASCII(d) || d.toLowerCase();
}

/** A loop, not a regular expression: this runs for every address of every command. */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

/** The canonical domain of an address (after its last `@`); '' when there is none. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : canonicalDomain(address.slice(at + 1));
}

const DOMAIN_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Whether a domain in its canonical form (see canonicalDomain) is a host or domain name: dot-separated labels of letters, digits, `-` and `_`. */
export function isDomainName(canonical: string): boolean {
  return DOMAIN_NAME.test(canonical);
}
