import type { RateLimitsConfig } from '../config/limits-schema.js';
import { normalizeAddress } from '../net/address.js';
import { IpList } from '../net/ip-list.js';
import { networkOf } from '../net/network.js';
import type { Clock } from '../runtime/clock.js';
import type { StateStore } from '../state/state-store.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS, type StepCheck } from './steps.js';

export interface RateLimitEvents {
  /** A limit refused a client; `limit` is its key, e.g. `client.connectionsPerMinute`. */
  rateLimited(limit: string): void;
}

type Kind = 'connectionsPerMinute' | 'messagesPerMinute' | 'recipientsPerMinute';
type Scope = 'client' | 'network' | 'sender';

const MINUTE = 60_000;
/**
 * How long a concurrency count lives after it was created: the safety net for a node that died with
 * sessions open (their decrements never come). Longer than any session (maxSessionMs is 15 minutes).
 */
const CONCURRENCY_TTL_MS = 3_600_000;

const WHO: Record<Scope, string> = { client: 'your address', network: 'your network', sender: 'this sender' };
const WHAT: Record<Kind, string> = { connectionsPerMinute: 'connections', messagesPerMinute: 'messages', recipientsPerMinute: 'recipients' };

/** A limit that is over, or nothing. */
interface Over {
  limit: string;
  scope: Scope;
  count: number;
  max: number;
  /** What there were too many of, for the reply. */
  noun: string;
}

/** The result at connect: a refusal, or the release of the session's concurrency slots (at close). */
export interface Admission {
  verdict?: Verdict;
  release(): Promise<void>;
}

/**
 * Rate and concurrency limits per client address, per network and per envelope sender, counted in
 * the StateStore (so every node behind a balancer counts together) in fixed one-minute windows
 * read from the Clock. A refused attempt still counts: a client that keeps hammering stays refused
 * until the window turns.
 */
export class RateLimits {
  private readonly exempt: IpList;

  constructor(
    private readonly config: RateLimitsConfig,
    private readonly store: StateStore,
    private readonly clock: Clock,
    private readonly events: RateLimitEvents,
  ) {
    this.exempt = IpList.parse(config.exempt);
  }

  /** Step 2.1: connections per minute and concurrent connections, per client address and network. */
  async connect(ip: string, trace: TraceEntry[]): Promise<Admission> {
    const none: Admission = { release: () => Promise.resolve() };
    if (this.exempted(ip, STEPS.rateConnections, trace)) return none;
    const net = this.network(ip);
    const over = await this.count(
      [
        ['client', ip],
        ['network', net],
      ],
      'connectionsPerMinute',
    );
    if (over) return { ...none, verdict: this.refuse(over, 'drop', 421, '4.7.0', STEPS.rateConnections, trace) };
    const slots: [Scope, string, number][] = [];
    if (this.config.client.concurrentConnections !== undefined) slots.push(['client', ip, this.config.client.concurrentConnections]);
    if (this.config.network.concurrentConnections !== undefined) slots.push(['network', net, this.config.network.concurrentConnections]);
    const keys = slots.map(([scope, id]) => `conc:${scope}:${id}`);
    const counts = await Promise.all(keys.map((k) => this.store.increment(k, 1, CONCURRENCY_TTL_MS)));
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      // A counter back at zero (or below, after it expired under open sessions) is removed, so the
      // next connection starts a fresh one with a fresh lifetime.
      await Promise.all(keys.map(async (k) => ((await this.store.increment(k, -1, CONCURRENCY_TTL_MS)) <= 0 ? this.store.delete(k) : undefined)));
    };
    const i = slots.findIndex(([, , max], j) => (counts[j] ?? 0) > max);
    const hit = slots[i];
    if (hit) {
      await release();
      const over2: Over = { limit: `${hit[0]}.concurrentConnections`, scope: hit[0], count: counts[i] ?? 0, max: hit[2], noun: 'concurrent connections' };
      return { release, verdict: this.refuse(over2, 'drop', 421, '4.7.0', STEPS.rateConnections, trace) };
    }
    trace.push(traceEntry(STEPS.rateConnections, 'within limits'));
    return { release };
  }

  /** Step 7.1: messages per minute, per client address, network and envelope sender. */
  message(ip: string, sender: string, trace: TraceEntry[]): Promise<Verdict | undefined> {
    return this.perMinute(ip, sender, 'messagesPerMinute', STEPS.rateMessages, trace);
  }

  /** Step 12.1: recipients per minute, per client address, network and envelope sender. */
  recipient(ip: string, sender: string, trace: TraceEntry[]): Promise<Verdict | undefined> {
    return this.perMinute(ip, sender, 'recipientsPerMinute', STEPS.rateRecipients, trace);
  }

  private async perMinute(ip: string, sender: string, kind: Kind, at: StepCheck, trace: TraceEntry[]): Promise<Verdict | undefined> {
    if (this.exempted(ip, at, trace)) return undefined;
    const over = await this.count(
      [
        ['client', ip],
        ['network', this.network(ip)],
        // The blank sender (bounces) is many senders at once: it is not limited as one.
        ...(sender === '' ? [] : [['sender', normalizeAddress(sender)] as [Scope, string]]),
      ],
      kind,
    );
    if (over) return this.refuse(over, 'tempfail', 451, '4.7.1', at, trace);
    trace.push(traceEntry(at, 'within limits'));
    return undefined;
  }

  /** Adds one to each configured counter of this window; the first one over its limit, if any. */
  private async count(scopes: [Scope, string][], kind: Kind): Promise<Over | undefined> {
    const now = this.clock.now();
    const window = Math.floor(now / MINUTE);
    const ttl = (window + 1) * MINUTE - now;
    const limited = scopes.flatMap(([scope, id]): [Scope, string, number][] => {
      const max = (this.config[scope] as Partial<Record<Kind, number>>)[kind];
      return max === undefined ? [] : [[scope, id, max]];
    });
    const counts = await Promise.all(limited.map(([scope, id]) => this.store.increment(`rate:${kind}:${scope}:${id}:${window}`, 1, ttl)));
    const i = limited.findIndex(([, , max], j) => (counts[j] ?? 0) > max);
    const hit = limited[i];
    return hit ? { limit: `${hit[0]}.${kind}`, scope: hit[0], count: counts[i] ?? 0, max: hit[2], noun: WHAT[kind] } : undefined;
  }

  private refuse(over: Over, action: 'drop' | 'tempfail', code: number, enhanced: string, at: StepCheck, trace: TraceEntry[]): Verdict {
    trace.push(traceEntry(at, `${over.limit}: ${over.count} > ${over.max}: refused`, over.limit));
    this.events.rateLimited(over.limit);
    return verdict(action, code, enhanced, `Too many ${over.noun} from ${WHO[over.scope]}, try again later`, at, over.limit);
  }

  private exempted(ip: string, at: StepCheck, trace: TraceEntry[]): boolean {
    const entry = this.exempt.match(ip);
    if (entry !== undefined) trace.push(traceEntry(at, `exempt (${entry})`));
    return entry !== undefined;
  }

  private network(ip: string): string {
    return networkOf(ip, this.config.networkPrefix);
  }
}
