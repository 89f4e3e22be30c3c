import { withCanonicalDomain } from '../net/address.js';
import { canonicalDomain } from '../net/domain.js';
import type { CompiledRules } from './compiled-rules.js';

/**
 * A recipient in the form steps 8-12 judge and the back end is offered: `postmaster` with no domain
 * (which RFC 5321 4.5.1 says must be accepted) becomes the postmaster of the first accepted domain,
 * so any back end can route it; a domain smtp-server turned into U-labels goes back to its A-labels
 * (see withCanonicalDomain).
 * With no accepted domain, `postmaster` stays as it is and relay protection refuses it.
 */
export function recipientAddress(rules: CompiledRules, address: string): string {
  if (address.toLowerCase() === 'postmaster') {
    const first = rules.rules.acceptedDomains[0];
    return first === undefined ? address : `postmaster@${canonicalDomain(first)}`;
  }
  return withCanonicalDomain(address);
}
