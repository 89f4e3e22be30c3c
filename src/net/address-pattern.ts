import { isQuotedLocal, normalizeAddress, splitAddress } from './address.js';
import { canonicalDomain, isDomainName } from './domain.js';

/** A sender or recipient pattern that does not parse, with where it stood. */
export class AddressPatternError extends Error {
  constructor(
    readonly index: number,
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`'${entry}': ${reason}`);
  }
}

const FORMS = 'expected ted@contoso.com, "Ted Bremer"@contoso.com, *@contoso.com, @contoso.com or *@*.contoso.com';
const DOMAIN_LITERAL = /^\[[0-9A-Fa-f:.]+\]$/;
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/**
 * Sender/recipient patterns: `ted@contoso.com`, `*@contoso.com` or `@contoso.com` (the domain),
 * `"Ted Bremer"@contoso.com` (quoted local part, exact), `*@*.contoso.com` (subdomains only).
 * Exact addresses and domains sit in maps and subdomain patterns are found by walking the domain's
 * suffixes, so a match costs a few lookups whatever the list's size. The blank sender matches nothing.
 */
export class AddressList {
  private constructor(
    private readonly exact: Map<string, string>,
    private readonly domains: Map<string, string>,
    private readonly subdomains: Map<string, string>,
    readonly size: number,
  ) {}

  /** Parse every pattern; throws AddressPatternError naming the first that does not parse. */
  static parse(entries: readonly string[]): AddressList {
    const exact = new Map<string, string>();
    const domains = new Map<string, string>();
    const subdomains = new Map<string, string>();
    // A duplicate pattern keeps the entry written first.
    const put = (map: Map<string, string>, key: string, entry: string): void => {
      if (!map.has(key)) map.set(key, entry);
    };
    entries.forEach((raw, index) => {
      const entry = raw.trim();
      const fail = (reason: string): never => {
        throw new AddressPatternError(index, raw, reason);
      };
      const domainPart = entry.startsWith('@') ? entry.slice(1) : entry.startsWith('*@') ? entry.slice(2) : undefined;
      if (domainPart !== undefined) {
        const wild = domainPart.startsWith('*.');
        const domain = canonicalDomain(wild ? domainPart.slice(2) : domainPart);
        if (!isDomainName(domain) && !(DOMAIN_LITERAL.test(domain) && !wild)) fail(`'${domainPart}' is not a domain; ${FORMS}`);
        put(wild ? subdomains : domains, domain, entry);
        return;
      }
      const parts = splitAddress(entry);
      if (!parts) return fail(FORMS);
      if (!isDomainName(canonicalDomain(parts.domain)) && !DOMAIN_LITERAL.test(parts.domain)) {
        fail(parts.domain.includes('*') ? `a wildcard domain needs a wildcard local part: *@${parts.domain}` : `'${parts.domain}' is not a domain; ${FORMS}`);
      }
      if (!isQuotedLocal(parts.local)) {
        if (parts.local.includes('*')) fail(`'*' stands only alone before the @ (*@domain); ${FORMS}`);
        if (!DOT_ATOM.test(parts.local)) fail(`the local part '${parts.local}' must be quoted, e.g. "Ted Bremer"@contoso.com`);
      }
      put(exact, normalizeAddress(entry), entry);
    });
    return new AddressList(exact, domains, subdomains, entries.length);
  }

  /** The pattern the address matches (exact address first, then domain, then the nearest parent domain), if any. */
  match(address: string): string | undefined {
    // No rule set lists every filter: an empty list need not read the address.
    if (this.size === 0) return undefined;
    const norm = normalizeAddress(address);
    const hit = this.exact.get(norm);
    if (hit !== undefined) return hit;
    // A list of whole addresses only (blocked recipients, exceptions, as most are) need not split the address.
    if (this.domains.size === 0 && this.subdomains.size === 0) return undefined;
    const parts = splitAddress(norm);
    if (!parts) return undefined;
    const domain = parts.domain;
    const byDomain = this.domains.get(domain);
    if (byDomain !== undefined) return byDomain;
    if (this.subdomains.size === 0) return undefined;
    for (let dot = domain.indexOf('.'); dot >= 0; dot = domain.indexOf('.', dot + 1)) {
      const sub = this.subdomains.get(domain.slice(dot + 1));
      if (sub !== undefined) return sub;
    }
    return undefined;
  }
}
