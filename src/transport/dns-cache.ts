/**
 * Remote delivery's DNS answers, kept for their TTL (negative ones for the SOA's, RFC 2308): a stream
 * of mail to one domain asks for its MX and their addresses once per TTL, not once per message, and
 * deliveries that ask at the same moment share one question. Only NOERROR and NXDOMAIN are kept; a
 * time-out or SERVFAIL is asked again next time.
 */
import { LRUCache } from 'lru-cache';
import type { DnsClient, DnsResponse } from '../dns/client.js';
import { systemClock, type Clock } from '../runtime/clock.js';

/** Answers kept at most: destinations are many, each answer is small. */
const MAX_ANSWERS = 10_000;

export class CachingDns {
  private readonly answers: LRUCache<string, DnsResponse>;
  private readonly asking = new Map<string, Promise<DnsResponse>>();

  constructor(
    private readonly dns: Pick<DnsClient, 'query'>,
    clock: Clock = systemClock,
  ) {
    this.answers = new LRUCache({ max: MAX_ANSWERS, perf: { now: () => clock.now() } });
  }

  query(name: string, type: 'MX' | 'A' | 'AAAA'): Promise<DnsResponse> {
    const key = `${type} ${name.toLowerCase()}`;
    const kept = this.answers.get(key);
    if (kept) return Promise.resolve(kept);
    let asking = this.asking.get(key);
    if (!asking) {
      asking = this.dns.query(name, type).then((answer) => {
        const ttl = cacheSeconds(answer);
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
