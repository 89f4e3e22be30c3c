import type { GreylistingConfig } from '../config/limits-schema.js';
import { AddressList } from '../net/address-pattern.js';
import { normalizeAddress } from '../net/address.js';
import { IpList } from '../net/ip-list.js';
import { networkOf } from '../net/network.js';
import type { Clock } from '../runtime/clock.js';
import type { StateStore } from '../state/state-store.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

export type GreylistOutcome = 'skipped' | 'exempt' | 'allowlisted' | 'known' | 'passed' | 'deferred';

export interface GreylistEvents {
  greylisting(outcome: GreylistOutcome): void;
}

const PASSED = 'p';
const WAITING = 'w:';

/**
 * Greylisting: a (client network, sender, recipient) triplet seen for the first time is deferred
 * with `451 4.7.1`; the same triplet retried after `delaySec` and within `retryWindowHours` passes,
 * and is then known for `allowDays`. A network whose triplets passed `autoAllowAfter` times is not
 * greylisted any more (until `allowDays` after its last pass). Times are the Clock's, kept in the
 * values, so a shared store's own expiry only cleans up.
 */
export class Greylisting {
  private readonly exemptClients: IpList;
  private readonly exemptSenders: AddressList;
  private readonly delayMs: number;
  private readonly windowMs: number;
  private readonly allowMs: number;

  constructor(
    private readonly config: GreylistingConfig,
    private readonly store: StateStore,
    private readonly clock: Clock,
    private readonly events: GreylistEvents,
  ) {
    this.exemptClients = IpList.parse(config.exemptClients);
    this.exemptSenders = AddressList.parse(config.exemptSenders);
    this.delayMs = config.delaySec * 1000;
    this.windowMs = config.retryWindowHours * 3_600_000;
    this.allowMs = config.allowDays * 86_400_000;
  }

  /** Step 12.2 for one recipient that passed every filter; `skip` says why the session is not greylisted. */
  async check(ip: string, sender: string, recipient: string, skip: string | undefined, trace: TraceEntry[]): Promise<Verdict | undefined> {
    if (skip !== undefined) return this.pass('skipped', `skipped: ${skip}`, trace);
    const exempt = this.exemptClients.match(ip) ?? (sender === '' ? undefined : this.exemptSenders.match(sender));
    if (exempt !== undefined) return this.pass('exempt', `exempt (${exempt})`, trace);
    const net = networkOf(ip, this.config.networkPrefix);
    const allowKey = `grey:allow:${net}`;
    const passes = Number((await this.store.get(allowKey)) ?? 0);
    if (passes >= this.config.autoAllowAfter) return this.pass('allowlisted', `network ${net} allowlisted after ${passes} passes`, trace);

    // JSON, not a separator: a quoted local part may hold any character, and two triplets must never share a key.
    const key = `grey:triplet:${JSON.stringify([net, sender === '' ? '<>' : normalizeAddress(sender), normalizeAddress(recipient)])}`;
    const now = this.clock.now();
    const seen = await this.store.get(key);
    if (seen === PASSED) return this.pass('known', 'triplet passed before', trace);
    const first = seen?.startsWith(WAITING) ? Number(seen.slice(WAITING.length)) : NaN;
    if (Number.isFinite(first) && now - first <= this.windowMs) {
      const left = first + this.delayMs - now;
      if (left > 0) return this.defer(`retried too early (${Math.ceil(left / 1000)} s left)`, trace);
      await this.store.set(key, PASSED, this.allowMs);
      await this.store.increment(allowKey, 1, this.allowMs);
      return this.pass('passed', `retried after ${Math.round((now - first) / 1000)} s: passed`, trace);
    }
    // First sight, or a retry after the window closed: the clock starts (again). On a race between
    // nodes the first writer's time stands.
    if (seen === undefined) await this.store.setIfAbsent(key, `${WAITING}${now}`, this.windowMs);
    else await this.store.set(key, `${WAITING}${now}`, this.windowMs);
    return this.defer(`first sight of ${net}`, trace);
  }

  private pass(outcome: GreylistOutcome, why: string, trace: TraceEntry[]): undefined {
    trace.push(traceEntry(STEPS.greylisting, why));
    this.events.greylisting(outcome);
    return undefined;
  }

  private defer(why: string, trace: TraceEntry[]): Verdict {
    trace.push(traceEntry(STEPS.greylisting, `${why}: deferred`));
    this.events.greylisting('deferred');
    return verdict('tempfail', 451, '4.7.1', 'Greylisted, please try again later', STEPS.greylisting);
  }
}
