/** Address helpers shared by the categorizer and the router. */
import { canonicalDomain } from '../net/domain.js';

/** Whether an envelope address has the shape local@domain with nothing unsafe in it (else 5.1.3). */
export function isValidAddress(address: string): boolean {
  const at = address.lastIndexOf('@');
  return at > 0 && at < address.length - 1 && ![...address].some((ch) => ch <= ' ' || ch === '\x7f' || ch === '<' || ch === '>');
}

/**
 * How specifically an address space matches a domain, or null when it does not match.
 * `*` scores 0, `*.suffix` scores the number of labels in the suffix (and matches only strict
 * subdomains of it), an exact domain scores its label count plus one half, so it beats every
 * wildcard that also covers that domain.
 */
export function addressSpaceScore(space: string, domain: string): number | null {
  const d = canonicalDomain(domain);
  const s = canonicalDomain(space);
  if (s === '*') return 0;
  if (s.startsWith('*.')) {
    const suffix = s.slice(2);
    return d.endsWith(`.${suffix}`) ? suffix.split('.').length : null;
  }
  return d === s ? s.split('.').length + 0.5 : null;
}
