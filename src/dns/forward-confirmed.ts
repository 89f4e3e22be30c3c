/**
 * Forward-confirmed reverse DNS of a client address (the HELO checks' `fcrdns`): its PTR names, then
 * each name's A or AAAA records, confirmed when one of them is the address again. Every query of one
 * check shares the DNS client's deadline. A timeout or a server failure is `failed` (a temporary
 * refusal), never a reason to refuse the client for good.
 */
import { isIPv4 } from 'node:net';
import { normalizeIp } from '../net/ip.js';
import { DnsError, type DnsClient } from './client.js';
import { dnsblQueryName } from './dnsbl-query-name.js';

export type ForwardConfirmation =
  | { outcome: 'confirmed'; name: string }
  | { outcome: 'unconfirmed'; reason: string }
  | { outcome: 'failed'; reason: string };

/** The port the policy asks (SessionDeps.hostNames). */
export interface HostNameLookup {
  forwardConfirmed(ip: string): Promise<ForwardConfirmation>;
}

/** At most this many PTR names are followed: a client's own zone may list any number. */
const MAX_NAMES = 5;

export class DnsHostNameLookup implements HostNameLookup {
  constructor(private readonly client: DnsClient) {}

  async forwardConfirmed(ip: string): Promise<ForwardConfirmation> {
    const address = normalizeIp(ip);
    const deadline = performance.now() + this.client.timeoutMs;
    const ask = async (name: string, type: 'PTR' | 'A' | 'AAAA'): Promise<string[] | ForwardConfirmation> => {
      try {
        const r = await this.client.query(name, type, { timeoutMs: Math.max(1, deadline - performance.now()) });
        if (r.rcode === 'NXDOMAIN') return [];
        if (r.rcode !== 'NOERROR') return { outcome: 'failed', reason: `${type} ${name}: ${r.rcode}` };
        return r.answers.filter((a) => a.type === type).map((a) => String(a.data));
      } catch (err) {
        if (err instanceof DnsError) return { outcome: 'failed', reason: `${type} ${name}: ${err.message}` };
        throw err;
      }
    };
    const names = await ask(dnsblQueryName(address, isIPv4(address) ? 'in-addr.arpa' : 'ip6.arpa'), 'PTR');
    if (!Array.isArray(names)) return names;
    if (names.length === 0) return { outcome: 'unconfirmed', reason: 'no PTR record' };
    const family = isIPv4(address) ? 'A' : 'AAAA';
    let failure: ForwardConfirmation | undefined;
    for (const name of names.slice(0, MAX_NAMES)) {
      const addresses = await ask(name, family);
      if (!Array.isArray(addresses)) failure ??= addresses;
      else if (addresses.some((a) => normalizeIp(a) === address)) return { outcome: 'confirmed', name: name.replace(/\.$/, '') };
    }
    return failure ?? { outcome: 'unconfirmed', reason: `no ${family} record of ${names.slice(0, MAX_NAMES).join(', ')} is ${address}` };
  }
}
