import { normalizeAddress, splitAddress } from './address.js';

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

/**
 * Sender/recipient patterns: `ted@contoso.com`, `*@contoso.com` or `@contoso.com` (the domain),
 * `"Ted Bremer"@contoso.com` (quoted local part, exact), `*@*.contoso.com` (subdomains only).
 * Exact addresses and domains sit in maps, so a match costs a few lookups whatever the list's size.
 */
export class AddressList {
  private constructor(
    private readonly exact: Map<string, string>,
    private readonly domains: Map<string, string>,
    private readonly subdomains: Map<string, string>,
  ) {}

  /** Parse every pattern; throws AddressPatternError naming the first that does not parse. */
  static parse(entries: string[]): AddressList {
    const exact = new Map<string, string>();
    const domains = new Map<string, string>();
    const subdomains = new Map<string, string>();
    entries.forEach((raw, index) => {
      const entry = raw.trim();
      const fail = (reason: string): never => {
        throw new AddressPatternError(index, raw, reason);
      };
      const asDomain = entry.startsWith('@') ? entry.slice(1) : entry.startsWith('*@') ? entry.slice(2) : undefined;
      if (asDomain !== undefined) {
        if (asDomain.startsWith('*.')) {
          const base = asDomain.slice(2).toLowerCase();
          if (!validDomain(base)) fail('expected *@*.domain');
          subdomains.set(base, entry);
        } else {
          if (!validDomain(asDomain)) fail('expected a domain after the @');
          domains.set(asDomain.toLowerCase(), entry);
        }
        return;
      }
      const parts = splitAddress(entry);
      if (!parts || !validDomain(parts.domain)) fail('expected user@domain, *@domain, @domain or *@*.domain');
      if (/\s/.test(parts?.local ?? '') && !parts?.local.startsWith('"')) fail('a local part with spaces must be quoted');
      exact.set(normalizeAddress(entry), entry);
    });
    return new AddressList(exact, domains, subdomains);
  }

  get size(): number {
    return this.exact.size + this.domains.size + this.subdomains.size;
  }

  /** The pattern the address matches, if any. */
  match(address: string): string | undefined {
    const norm = normalizeAddress(address);
    const hit = this.exact.get(norm);
    if (hit !== undefined) return hit;
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

function validDomain(d: string): boolean {
  return /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(d) || /^\[[0-9A-Fa-f:.]+\]$/.test(d);
}
