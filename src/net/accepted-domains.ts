import { canonicalDomain, domainOf } from './domain.js';

/**
 * The domains we are authoritative for (`rules.acceptedDomains`), compared in their canonical form:
 * the one answer to "is this domain ours" for relay protection, the directory and the engine's router.
 */
export class AcceptedDomains {
  private readonly domains: Set<string>;

  constructor(domains: readonly string[]) {
    this.domains = new Set(domains.map(canonicalDomain));
  }

  /** Whether a domain, in any IDN form or case, with or without its trailing dot, is ours. */
  has(domain: string): boolean {
    return this.domains.has(canonicalDomain(domain));
  }

  /** Whether an address (its part after the last `@`) is in one of our domains. */
  holds(address: string): boolean {
    return this.domains.has(domainOf(address));
  }
}
