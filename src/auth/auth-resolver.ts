/**
 * The DNS mailauth asks for SPF, DKIM keys, DMARC and ARC records: the edge's own resolver settings
 * (dns.servers, dns.timeoutMs) through DnsClient, with an LRU cache where each answer lives for its
 * TTL (a negative answer for its SOA's negative TTL), and a deadline for one whole check so a chain
 * of includes cannot hold a session for ten lookups' worth of time-outs.
 */
import { LRUCache } from 'lru-cache';
import { DnsError, type DnsClient, type DnsResponse, type QueryType } from '../dns/client.js';
import { systemClock, type Clock } from '../runtime/clock.js';

/** mailauth's resolver: `dns.promises.resolve`'s shape, errors carrying `code` (ENOTFOUND, ENODATA, ETIMEOUT, ...). */
export type AuthDnsResolver = (name: string, type: string) => Promise<unknown[]>;

/** The record types the checks need; PTR (SPF's `ptr`, which RFC 7208 5.5 says not to use) is answered as no record. */
const SUPPORTED = new Set<string>(['A', 'AAAA', 'TXT', 'MX']);

/** Longest any answer is kept, whatever its TTL says. */
const MAX_TTL_SEC = 86_400;

type Answer = { records: unknown[] } | { code: 'ENOTFOUND' | 'ENODATA' };

interface Entry {
  answer: Answer;
  expiresAt: number;
}

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
  private readonly client: DnsClient;
  private readonly clock: Clock;
  private readonly cache: LRUCache<string, Entry>;
  private readonly inFlight = new Map<string, Promise<Entry>>();
  /** DNS queries sent (not answered from the cache), for the benchmark and tests. */
  queries = 0;

  constructor(options: AuthResolverOptions) {
    this.client = options.client;
    this.clock = options.clock ?? systemClock;
    this.cache = new LRUCache({ max: options.cacheSize });
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
    const key = `${type} ${name.toLowerCase()}`;
    let entry = this.cache.get(key);
    if (!entry || entry.expiresAt <= this.clock.now()) {
      let pending = this.inFlight.get(key);
      if (!pending) {
        pending = this.fetch(name, type as QueryType, timeoutMs).finally(() => this.inFlight.delete(key));
        this.inFlight.set(key, pending);
      }
      entry = await pending;
    }
    const { answer } = entry;
    if ('code' in answer) throw dnsError(answer.code, `${answer.code} ${name} ${type}`);
    return answer.records;
  }

  private async fetch(name: string, type: QueryType, timeoutMs: number): Promise<Entry> {
    this.queries += 1;
    let response: DnsResponse;
    try {
      response = await this.client.query(name, type, { timeoutMs });
    } catch (err) {
      // Not cached: a time-out or an unreachable resolver is a temporary error, asked again next time.
      const kind = err instanceof DnsError ? err.kind : 'network';
      throw dnsError(kind === 'timeout' ? 'ETIMEOUT' : 'ESERVFAIL', (err as Error).message);
    }
    if (response.rcode !== 'NOERROR' && response.rcode !== 'NXDOMAIN') {
      throw dnsError(response.rcode === 'REFUSED' ? 'EREFUSED' : 'ESERVFAIL', `${response.rcode} from ${response.server} for ${name} ${type}`);
    }
    const records = response.rcode === 'NXDOMAIN' ? [] : recordsOf(response, type);
    const answer: Answer = response.rcode === 'NXDOMAIN' ? { code: 'ENOTFOUND' } : records.length === 0 ? { code: 'ENODATA' } : { records };
    const ttls = response.answers.filter((r) => r.type === type).map((r) => r.ttl);
    const ttl = Math.min(MAX_TTL_SEC, records.length > 0 ? Math.min(...ttls) : (response.negativeTtl ?? 0));
    const entry = { answer, expiresAt: this.clock.now() + ttl * 1000 };
    if (ttl > 0) this.cache.set(`${type} ${name.toLowerCase()}`, entry);
    return entry;
  }
}
