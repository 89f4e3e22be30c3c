import type { Rules } from '../config/schema.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import type { ResourceProbe } from '../runtime/resource-probe.js';
import { MemoryStateStore } from '../state/memory-state-store.js';
import type { StateStore } from '../state/state-store.js';
import { BackPressure, type BackPressureEvents } from './back-pressure.js';
import { Greylisting, type GreylistEvents } from './greylisting.js';
import { RateLimits, type RateLimitEvents } from './rate-limits.js';

export type LimitEvents = BackPressureEvents & RateLimitEvents & GreylistEvents;

/** The ports the limits run on: the process's one store, its clock, its load probe, and where events go. */
export interface LimitPorts {
  store: StateStore;
  clock: Clock;
  /** Absent where nothing is measured (`portcullis check`): back pressure is then not judged. */
  probe?: ResourceProbe;
  events: LimitEvents;
}

/** The limits a rule set turns on, each absent when it is off. */
export interface Limits {
  backPressure?: BackPressure;
  rateLimits?: RateLimits;
  greylisting?: Greylisting;
}

const IGNORED: LimitEvents = { backPressure: () => undefined, rateLimited: () => undefined, greylisting: () => undefined };

/**
 * Ports for a simulation (`portcullis check`): a fresh memory store of its own, so it shows what a
 * client new to the system gets and never writes to the store the servers share.
 */
export function freshLimitPorts(clock: Clock = systemClock): LimitPorts {
  return { store: new MemoryStateStore(10_000), clock, events: IGNORED };
}

/**
 * The limits of one rule set. They are state, not rules: without ports (a shadow rule set, a
 * replay) none of them runs, as a store of their own would disagree with the live one for that alone.
 */
export function compileLimits(rules: Rules, ports?: LimitPorts): Limits {
  const limits: Limits = {};
  if (!ports) return limits;
  const { store, clock, probe, events } = ports;
  if (rules.backPressure && probe) limits.backPressure = new BackPressure(rules.backPressure, probe, events);
  if (rules.rateLimits) limits.rateLimits = new RateLimits(rules.rateLimits, store, clock, events);
  if (rules.greylisting) limits.greylisting = new Greylisting(rules.greylisting, store, clock, events);
  return limits;
}
