/**
 * The DNS mailauth asks for SPF, DKIM keys, DMARC and ARC records: the edge's own resolver settings
 * (dns.servers, dns.timeoutMs) through DnsClient and the shared TTL cache (CachingDns: a negative answer
 * for its SOA's negative TTL, a day at most), and a deadline for one whole check so a chain
 * of includes cannot hold a session for ten lookups' worth of time-outs.
 */
import { CachingDns } from '../dns/caching-dns.js';
import { DnsError, type DnsClient, type DnsResponse, type QueryType } from '../dns/client.js';
import { systemClock, type Clock } from '../runtime/clock.js';

/** mailauth's resolver: `dns.promises.resolve`'s shape, errors carrying `code` (ENOTFOUND, ENODATA, ETIMEOUT, ...). */
export type AuthDnsResolver = (name: string, type: string) => Promise<unknown[]>;

/** The record types the checks need; PTR (SPF's `ptr`, which RFC 7208 5.5 says not to use) is answered as no record. */
const SUPPORTED = new Set<string>(['A', 'AAAA', 'TXT', 'MX']);

/** Longest any answer is kept, whatever its TTL says. */
const MAX_TTL_SEC = 86_400;

export interface AuthResolverOptions {
  client: DnsClient;
  cacheSize: number;
  clock?: Clock;
}

/** A resolver error as node:dns words it, which is what mailauth classifies (void lookup, temperror). */
function dnsError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function recordsOf(response: DnsResponse, type: QueryType): unknown[] {
  const out: unknown[] = [];
  for (const r of response.answers) {
    if (r.type !== type) continue;
    if (r.type === 'MX') out.push({ exchange: r.data.exchange, priority: r.data.preference });
    // node:dns gives a TXT record as its character-strings; DnsClient has joined them already.
    else if (r.type === 'TXT') out.push([r.data]);
    else out.push(r.data);
  }
  return out;
}

export class CachedAuthResolver {
  private readonly clock: Clock;
  private readonly dns: CachingDns;
  /** DNS queries sent (not answered from the cache), for the benchmark and tests. */
  queries = 0;

  constructor(options: AuthResolverOptions) {
    this.clock = options.clock ?? systemClock;
    const counted: Pick<DnsClient, 'query'> = {
      query: (...args) => {
        this.queries += 1;
        return options.client.query(...args);
      },
    };
    this.dns = new CachingDns(counted, { max: options.cacheSize, maxTtlSec: MAX_TTL_SEC, clock: this.clock });
  }

  /** A resolver for one check that must be done within `budgetMs`: every query gets what is left of it. */
  withDeadline(budgetMs: number): AuthDnsResolver {
    const deadline = this.clock.now() + budgetMs;
    return async (name, type) => {
      const left = deadline - this.clock.now();
      if (left <= 0) throw dnsError('ETIMEOUT', `sender authentication deadline (${budgetMs} ms) passed before ${name} ${type}`);
      return this.resolve(name, type, left);
    };
  }

  private async resolve(name: string, type: string, timeoutMs: number): Promise<unknown[]> {
    if (!SUPPORTED.has(type)) throw dnsError('ENODATA', `${type} lookups are not made`);
    let response: DnsResponse;
    try {
      response = await this.dns.query(name, type as QueryType, { timeoutMs });
    } catch (err) {
      // A time-out or an unreachable resolver is a temporary error (and not kept: asked again next time).
      const kind = err instanceof DnsError ? err.kind : 'network';
      throw dnsError(kind === 'timeout' ? 'ETIMEOUT' : 'ESERVFAIL', (err as Error).message);
    }
    if (response.rcode === 'NXDOMAIN') throw dnsError('ENOTFOUND', `ENOTFOUND ${name} ${type}`);
    if (response.rcode !== 'NOERROR') {
      throw dnsError(response.rcode === 'REFUSED' ? 'EREFUSED' : 'ESERVFAIL', `${response.rcode} from ${response.server} for ${name} ${type}`);
    }
    const records = recordsOf(response, type as QueryType);
    if (records.length === 0) throw dnsError('ENODATA', `ENODATA ${name} ${type}`);
    return records;
  }
}
