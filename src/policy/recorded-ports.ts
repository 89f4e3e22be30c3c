/**
 * The DNSBL and zone-health ports of one session, recorded as the live engine uses them and played
 * back to the same engine by replay: the recorded answers are the only DNS a replay sees.
 */
import type { DnsblAnswer } from '../dns/dnsbl-answer.js';
import type { DnsblLookup } from '../dns/dnsbl-lookup.js';
import type { ZoneHealth } from '../dns/zone-health.js';
import type { Clock } from '../runtime/clock.js';

/** One DNSBL answer the engine used: which zone, about which address, when, and what came back (with its TTL). */
export interface RecordedDnsAnswer {
  zone: string;
  ip: string;
  /** Clock time (ms) the answer arrived. */
  at: number;
  answer: DnsblAnswer;
}

/** Passes lookups and health questions on, keeping every answer for the session's record. */
export class RecordingPorts {
  readonly answers: RecordedDnsAnswer[] = [];
  /** Whether each zone the rules asked about was enforced (healthy or unreachable) when asked. */
  readonly zones: Record<string, boolean> = {};
  readonly dnsbl: DnsblLookup;
  readonly health: ZoneHealth;

  constructor(dnsbl: DnsblLookup, health: ZoneHealth, clock: Clock) {
    this.dnsbl = {
      lookup: (zone, ip) => {
        const answered = dnsbl.lookup(zone, ip);
        const record = (answer: DnsblAnswer): DnsblAnswer => {
          this.answers.push({ zone, ip, at: clock.now(), answer });
          return answer;
        };
        // A cached answer is recorded and passed on in its turn, as the lookup gave it.
        return answered instanceof Promise ? answered.then(record) : record(answered);
      },
    };
    this.health = {
      isEnforced: (zone) => {
        const enforced = health.isEnforced(zone);
        this.zones[zone] = enforced;
        return enforced;
      },
    };
  }
}

/** What a replaying lookup answers for a zone the record has no answer for (the candidate asks a new list). */
export const NOT_RECORDED = 'no answer recorded for this zone';

/** Answers from a record, never the network; a zone the record lacks is a lookup error, and noted. */
export class ReplayingPorts {
  /** Zones asked that the record has no answer for. */
  readonly missing = new Set<string>();
  readonly dnsbl: DnsblLookup;
  readonly health: ZoneHealth;

  constructor(answers: readonly RecordedDnsAnswer[], zones: Readonly<Record<string, boolean>>) {
    const byZone = new Map(answers.map((a) => [`${a.zone} ${a.ip}`, a.answer]));
    this.dnsbl = {
      lookup: (zone, ip) => {
        const answer = byZone.get(`${zone} ${ip}`);
        if (answer) return Promise.resolve(answer);
        this.missing.add(zone);
        return Promise.resolve({ status: 'error', queryName: zone, codes: [], errorCodes: [], detail: NOT_RECORDED, cached: false });
      },
    };
    // A zone whose health was not recorded was never asked; it is judged as the record's time would have (enforced).
    this.health = { isEnforced: (zone) => zones[zone] ?? true };
  }
}
