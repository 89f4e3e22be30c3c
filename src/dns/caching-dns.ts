/**
 * DNS answers kept for their TTL (negative ones for the SOA's, RFC 2308), at most `maxTtlSec`:
 * remote delivery asks for a domain's MX and addresses once per TTL rather than once per message,
 * sender authentication its SPF, DKIM and DMARC records once per TTL rather than once per message, and
 * callers that ask at the same moment share one question. Only NOERROR and NXDOMAIN are kept; a
 * time-out or SERVFAIL is asked again next time.
 */
import { LRUCache } from 'lru-cache';
import type { DnsClient, DnsResponse, QueryOptions, QueryType } from './client.js';
import { systemClock, type Clock } from '../runtime/clock.js';

export interface CachingDnsOptions {
  /** Answers kept at most (least recently used out first). */
  max: number;
  /** Longest any answer is kept, whatever its TTL says. */
  maxTtlSec?: number;
  clock?: Clock;
}

export class CachingDns {
  private readonly answers: LRUCache<string, DnsResponse>;
  private readonly asking = new Map<string, Promise<DnsResponse>>();
  private readonly maxTtlSec: number;

  constructor(
    private readonly dns: Pick<DnsClient, 'query'>,
    options: CachingDnsOptions,
  ) {
    const clock = options.clock ?? systemClock;
    this.maxTtlSec = options.maxTtlSec ?? Infinity;
    // ttlResolution 0: every staleness check reads the clock (a cached reading would outlive a test clock's jump).
    this.answers = new LRUCache({ max: options.max, ttlResolution: 0, perf: { now: () => clock.now() } });
  }

  /** `options` (the time-out) go with a question actually sent; one answered from the cache needs none. */
  query(name: string, type: QueryType, options: QueryOptions = {}): Promise<DnsResponse> {
    const key = `${type} ${name.toLowerCase()}`;
    const kept = this.answers.get(key);
    if (kept) return Promise.resolve(kept);
    let asking = this.asking.get(key);
    if (!asking) {
      asking = this.dns.query(name, type, options).then((answer) => {
        const ttl = Math.min(this.maxTtlSec, cacheSeconds(answer));
        if (ttl > 0) this.answers.set(key, answer, { ttl: ttl * 1000 });
        return answer;
      });
      const done = (): void => void this.asking.delete(key);
      asking.then(done, done);
      this.asking.set(key, asking);
    }
    return asking;
  }
}

/** How long an answer may be kept: its shortest record's TTL, a negative answer's SOA time, else not at all. */
function cacheSeconds(a: DnsResponse): number {
  if (a.rcode !== 'NOERROR' && a.rcode !== 'NXDOMAIN') return 0;
  if (a.answers.length === 0) return a.negativeTtl ?? 0;
  return Math.min(...a.answers.map((r) => r.ttl));
}
