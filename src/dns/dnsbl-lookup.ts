import { LRUCache } from 'lru-cache';
import { classifyCodes } from './dnsbl-answer.js';
import { dnsblQueryName } from './dnsbl-query-name.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import type { DnsblAnswer, DnsblAnswerOrPromise } from './dnsbl-answer.js';
import { DnsError, type DnsClient, type DnsResponse } from './client.js';

/**
 * Asks a DNSBL zone about an address (cached, deadline-bounded): the port step 9 uses. An answer
 * already in hand (a cached one) comes back as itself, so that the caller can judge it in this turn.
 */
export interface DnsblLookup {
  lookup(zone: string, ip: string): DnsblAnswerOrPromise;
}

/** The outcome of one lookup, as counted in the metrics. */

export type DnsblOutcomeKind = DnsblAnswer['status'];

/** Metrics hook: one call per `lookup()`, with the caller's wait in seconds. */
export type OnDnsblLookup = (zone: string, outcome: DnsblOutcomeKind, seconds: number, cached: boolean) => void;

export interface CachedDnsblLookupOptions {
  client: DnsClient;
  /** Most entries kept (config `dns.cacheSize`). */
  cacheSize: number;
  /** Time source for TTL expiry (tests move it by hand). */
  clock?: Clock;
  onLookup?: OnDnsblLookup;
  /**
   * How long a failed lookup (time-out, SERVFAIL, only error codes) is remembered, in seconds.
   * Short on purpose: long enough that a dead resolver does not cost every session a full
   * time-out, short enough that a passing glitch is forgotten at once. 0 disables it.
   */
  errorTtlSec?: number;
  /** Upper bound on any cached TTL, in seconds, however long the zone says (1 day). */
  maxTtlSec?: number;
}

type Fresh = Omit<DnsblAnswer, 'cached'>;

interface Entry {
  answer: Fresh;
  expiresAt: number;
}

export const DEFAULT_ERROR_TTL_SEC = 5;
export const DEFAULT_MAX_TTL_SEC = 86_400;

/**
 * A cached answer as the lookup returns it, field by field in the order of the fresh one's: an object
 * spread of a stored answer whose `ttlSec` was added after it was built took V8 about 2 µs, three
 * times per session.
 */
function cachedAnswer(fresh: Fresh, ttlSec: number): DnsblAnswer {
  // The same keys in the same order as the spread gave: a decision record writes the answer out.
  // `cached` is set last, below.
  const answer = { status: fresh.status, queryName: fresh.queryName, codes: fresh.codes, errorCodes: fresh.errorCodes } as DnsblAnswer;
  if (fresh.detail !== undefined) answer.detail = fresh.detail;
  if (fresh.txt !== undefined) answer.txt = fresh.txt;
  answer.ttlSec = ttlSec;
  answer.cached = true;
  return answer;
}

/**
 * DNSBL lookups with an LRU cache keyed by query name (zone + full address), each entry living as
 * long as the answer's TTL (the negative TTL for NXDOMAIN/NODATA). Concurrent lookups of one key
 * share one query; a listing also fetches the TXT record, within the same deadline.
 */
export class CachedDnsblLookup implements DnsblLookup {
  private readonly client: DnsClient;
  private readonly clock: Clock;
  private readonly cache: LRUCache<string, Entry>;
  private readonly inFlight = new Map<string, Promise<Fresh>>();
  private readonly onLookup: OnDnsblLookup | undefined;
  private readonly errorTtlMs: number;
  private readonly maxTtlMs: number;

  constructor(options: CachedDnsblLookupOptions) {
    this.client = options.client;
    this.clock = options.clock ?? systemClock;
    this.cache = new LRUCache<string, Entry>({ max: options.cacheSize });
    this.onLookup = options.onLookup;
    this.errorTtlMs = (options.errorTtlSec ?? DEFAULT_ERROR_TTL_SEC) * 1000;
    this.maxTtlMs = (options.maxTtlSec ?? DEFAULT_MAX_TTL_SEC) * 1000;
  }

  /**
   * Ask `zone` about `ip`; never rejects — failures come back as `error` / `timeout` answers. A cache
   * hit, a busy server's usual case, is the answer itself: no promise, no turn of the microtask queue.
   */
  lookup(zone: string, ip: string): DnsblAnswerOrPromise {
    const started = performance.now();
    let queryName: string;
    try {
      queryName = dnsblQueryName(ip, zone).toLowerCase();
    } catch (err) {
      const answer: DnsblAnswer = { status: 'error', queryName: '', codes: [], errorCodes: [], detail: (err as Error).message, cached: false };
      this.report(zone, answer, started);
      return answer;
    }
    const hit = this.cache.get(queryName);
    const now = this.clock.now();
    if (hit && hit.expiresAt > now) {
      const answer = cachedAnswer(hit.answer, Math.ceil((hit.expiresAt - now) / 1000));
      this.report(zone, answer, started);
      return answer;
    }
    if (hit) this.cache.delete(queryName);
    return this.ask(zone, queryName, started);
  }

  /** A lookup the cache could not answer: one query per name, however many sessions wait for it. */
  private async ask(zone: string, queryName: string, started: number): Promise<DnsblAnswer> {
    let pending = this.inFlight.get(queryName);
    if (!pending) {
      pending = this.resolve(queryName).finally(() => this.inFlight.delete(queryName));
      this.inFlight.set(queryName, pending);
    }
    const answer = { ...(await pending), cached: false };
    this.report(zone, answer, started);
    return answer;
  }

  /** Forget every cached answer (e.g. after the DNS servers changed). */
  clear(): void {
    this.cache.clear();
  }

  private report(zone: string, answer: DnsblAnswer, started: number): void {
    this.onLookup?.(zone, answer.status, (performance.now() - started) / 1000, answer.cached);
  }

  private remember(queryName: string, answer: Fresh, ttlMs: number): void {
    const ms = Math.max(0, Math.min(ttlMs, this.maxTtlMs));
    answer.ttlSec = Math.round(ms / 1000);
    if (ms > 0) this.cache.set(queryName, { answer, expiresAt: this.clock.now() + ms });
  }

  private async resolve(queryName: string): Promise<Fresh> {
    const deadline = performance.now() + this.client.timeoutMs;
    let response: DnsResponse;
    try {
      response = await this.client.query(queryName, 'A');
    } catch (err) {
      const timedOut = err instanceof DnsError && err.kind === 'timeout';
      const answer: Fresh = {
        status: timedOut ? 'timeout' : 'error',
        queryName,
        codes: [],
        errorCodes: [],
        detail: err instanceof Error ? err.message : String(err),
      };
      this.remember(queryName, answer, this.errorTtlMs);
      return answer;
    }
    if (response.rcode !== 'NOERROR' && response.rcode !== 'NXDOMAIN') {
      const answer: Fresh = { status: 'error', queryName, codes: [], errorCodes: [], detail: `${response.rcode} from ${response.server}` };
      this.remember(queryName, answer, this.errorTtlMs);
      return answer;
    }
    const records = response.answers.filter((a) => a.type === 'A');
    if (records.length === 0) {
      const answer: Fresh = { status: 'not-listed', queryName, codes: [], errorCodes: [] };
      // RFC 2308: without an SOA there is no negative TTL, so the answer is not cached.
      this.remember(queryName, answer, (response.negativeTtl ?? 0) * 1000);
      return answer;
    }
    const { codes, errorCodes } = classifyCodes(records.map((r) => String(r.data)));
    const ttlMs = Math.min(...records.map((r) => r.ttl)) * 1000;
    if (codes.length === 0) {
      const answer: Fresh = {
        status: 'error',
        queryName,
        codes,
        errorCodes,
        detail: `zone answered error codes only: ${errorCodes.join(', ')}`,
      };
      this.remember(queryName, answer, Math.min(ttlMs, this.errorTtlMs));
      return answer;
    }
    const answer: Fresh = { status: 'listed', queryName, codes, errorCodes };
    const txt = await this.fetchTxt(queryName, deadline - performance.now());
    if (txt !== undefined) answer.txt = txt;
    this.remember(queryName, answer, ttlMs);
    return answer;
  }

  /** The TXT for a listed address, if it arrives before the lookup's deadline; absent otherwise. */
  private async fetchTxt(queryName: string, remainingMs: number): Promise<string | undefined> {
    if (remainingMs < 1) return undefined;
    try {
      const r = await this.client.query(queryName, 'TXT', { timeoutMs: remainingMs });
      const texts = r.answers.filter((a) => a.type === 'TXT').map((a) => String(a.data));
      return texts.length ? texts.join(' ') : undefined;
    } catch {
      // The listing stands without its explanation: %3 is then empty, as documented.
      return undefined;
    }
  }
}
