import { classifyCodes } from './dnsbl-answer.js';
import { dnsblQueryName } from './dnsbl-query-name.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import type { DnsClient } from './client.js';

/**
 * What a zone's last RFC 5782 check found: it answers as it should, it answers wrongly (127.0.0.2
 * not listed, 127.0.0.1 listed, error codes), or the check could not be completed (time-out,
 * SERVFAIL, REFUSED, resolver down). Only a zone that answers wrongly stops being enforced: one that
 * cannot be reached says nothing about the zone, its lookups fail too, and its rule's `onError` decides.
 */
/** RFC 5782 zone health, as last checked: the port step 9 uses. */
export interface ZoneHealth {
  /** False only while the zone's last check found it answering wrongly (unhealthy); an unreachable zone is enforced. */
  isEnforced(zone: string): boolean;
}

export type ZoneState = 'healthy' | 'unhealthy' | 'unreachable';

/** A state as `check`, `dnsbl --health` and the logs print it: the states that need attention in capitals. */
export function zoneStateWord(state: ZoneState | undefined): string {
  return state === undefined ? 'not checked' : state === 'healthy' ? state : state.toUpperCase();
}

/** One zone's health as last checked. `state` is undefined until the first check completes. */
export interface ZoneStatus {
  state: ZoneState | undefined;
  /** Clock time (ms) of the last completed check. */
  checkedAt?: number;
  reason: string;
}

/** Called whenever a zone's state changes (including its first result). */
export type OnZoneHealthChange = (zone: string, state: ZoneState, reason: string) => void;

export interface ZoneHealthMonitorOptions {
  client: DnsClient;
  zones: string[];
  /** Seconds between rounds after the start-up round; 0 checks only at start-up. */
  intervalSec: number;
  clock?: Clock;
  onChange?: OnZoneHealthChange;
}

/** Result of one RFC 5782 check of one zone. */
export interface ZoneCheck {
  state: ZoneState;
  reason: string;
}

/**
 * RFC 5782 test points: 127.0.0.2 must be listed, 127.0.0.1 must not. The client is used directly
 * (never the lookup cache), so each round sees the zone as it is now. A wrong answer from either
 * test point outweighs a failure of the other: it is evidence about the zone itself.
 */
export async function checkZone(client: DnsClient, zone: string): Promise<ZoneCheck> {
  const [positive, negative] = await Promise.all([probe(client, zone, '127.0.0.2'), probe(client, zone, '127.0.0.1')]);
  if (positive.kind === 'error-codes') return { state: 'unhealthy', reason: `test point 127.0.0.2: ${positive.detail}` };
  if (negative.kind === 'error-codes') return { state: 'unhealthy', reason: `test point 127.0.0.1: ${negative.detail}` };
  if (positive.kind === 'not-listed') return { state: 'unhealthy', reason: 'test point 127.0.0.2 is not listed (zone empty or dead)' };
  if (negative.kind === 'listed') {
    return { state: 'unhealthy', reason: `test point 127.0.0.1 is listed (${negative.detail}): the zone lists everything` };
  }
  if (positive.kind === 'unreachable') return { state: 'unreachable', reason: `test point 127.0.0.2: ${positive.detail}` };
  if (negative.kind === 'unreachable') return { state: 'unreachable', reason: `test point 127.0.0.1: ${negative.detail}` };
  return { state: 'healthy', reason: `127.0.0.2 listed (${positive.detail}), 127.0.0.1 not listed` };
}

type Probe = { kind: 'listed' | 'not-listed' | 'error-codes' | 'unreachable'; detail: string };

async function probe(client: DnsClient, zone: string, ip: string): Promise<Probe> {
  try {
    const r = await client.query(dnsblQueryName(ip, zone), 'A');
    if (r.rcode === 'NXDOMAIN') return { kind: 'not-listed', detail: 'NXDOMAIN' };
    if (r.rcode !== 'NOERROR') return { kind: 'unreachable', detail: `${r.rcode} from ${r.server}` };
    const { codes, errorCodes } = classifyCodes(r.answers.filter((a) => a.type === 'A').map((a) => String(a.data)));
    if (codes.length) return { kind: 'listed', detail: codes.join(', ') };
    if (errorCodes.length) return { kind: 'error-codes', detail: `error codes ${errorCodes.join(', ')}` };
    return { kind: 'not-listed', detail: 'no A record' };
  } catch (err) {
    return { kind: 'unreachable', detail: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Keeps every configured zone's health: one round at start-up (awaited), then one every
 * `intervalSec`. A zone never checked yet is enforced: `start()` is awaited before any
 * traffic, so that only covers callers that skip health checks on purpose (or a zone just added
 * by a reload, which is checked at once) — disabling every rule then would silently remove all
 * DNSBL protection, which is the worse failure.
 */
export class ZoneHealthMonitor implements ZoneHealth {
  private readonly client: DnsClient;
  private readonly clock: Clock;
  private readonly intervalSec: number;
  private readonly onChange: OnZoneHealthChange | undefined;
  private readonly zones = new Map<string, ZoneStatus>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;

  constructor(options: ZoneHealthMonitorOptions) {
    this.client = options.client;
    this.clock = options.clock ?? systemClock;
    this.intervalSec = options.intervalSec;
    this.onChange = options.onChange;
    for (const zone of options.zones) this.zones.set(key(zone), unchecked());
  }

  /** Check every zone now (resolves when done), then keep checking every interval. */
  async start(): Promise<void> {
    await this.checkAll();
    if (this.intervalSec > 0 && !this.timer) {
      this.timer = setInterval(() => void this.checkAll(), this.intervalSec * 1000);
      this.timer.unref();
    }
  }

  /** Stop the periodic checks. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Replace the set of zones (after a rules reload); new zones are checked at once. */
  async setZones(zones: string[]): Promise<void> {
    const wanted = new Set(zones.map(key));
    for (const zone of [...this.zones.keys()]) if (!wanted.has(zone)) this.zones.delete(zone);
    const added = [...wanted].filter((z) => !this.zones.has(z));
    for (const zone of added) this.zones.set(zone, unchecked());
    await Promise.all(added.map((z) => this.checkOne(z)));
  }

  /** Run one round over every zone; overlapping calls share the round in progress. */
  checkAll(): Promise<void> {
    this.round ??= Promise.all([...this.zones.keys()].map((z) => this.checkOne(z)))
      .then(() => undefined)
      .finally(() => {
        this.round = undefined;
      });
    return this.round;
  }

  /** Whether `zone`'s rule is enforced: false only while its last check found it answering wrongly. */
  isEnforced(zone: string): boolean {
    return this.zones.get(key(zone))?.state !== 'unhealthy';
  }

  /** Every zone's last result, by zone name. */
  status(): Record<string, ZoneStatus> {
    return Object.fromEntries([...this.zones].map(([z, s]) => [z, { ...s }]));
  }

  private async checkOne(zone: string): Promise<void> {
    const result = await checkZone(this.client, zone);
    const before = this.zones.get(zone);
    if (!before) return; // Removed by a reload while the check ran.
    this.zones.set(zone, { state: result.state, checkedAt: this.clock.now(), reason: result.reason });
    if (before.state !== result.state) this.onChange?.(zone, result.state, result.reason);
  }
}

function key(zone: string): string {
  return zone.replace(/\.$/, '').toLowerCase();
}

function unchecked(): ZoneStatus {
  return { state: undefined, reason: 'not checked yet' };
}
