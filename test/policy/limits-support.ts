/** An engine with rate limits, back pressure and greylisting on a memory store, a fake clock and a fake probe. */
import { RulesSchema, type Rules } from '../../src/config/schema.js';
import { DirectoryModel } from '../../src/directory/directory-model.js';
import type { DnsblLookup } from '../../src/dns/dnsbl-lookup.js';
import type { LimitEvents } from '../../src/policy/limits.js';
import { PolicyEngine } from '../../src/policy/policy-engine.js';
import type { ResourceSample } from '../../src/runtime/resource-probe.js';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';
import type { StateStore } from '../../src/state/state-store.js';

export interface LimitsFixture {
  engine: PolicyEngine;
  store: StateStore;
  clock: { now(): number; advance(ms: number): void };
  load: ResourceSample;
  events: string[];
}

export function limitRules(over: Record<string, unknown>): Rules {
  return RulesSchema.parse({
    hostname: 'mx.example.test',
    acceptedDomains: ['example.test'],
    listeners: [
      { name: 'internet', listen: '127.0.0.1:0' },
      { name: 'submission', listen: '127.0.0.1:0', relayFrom: ['10.0.0.0/8'] },
    ],
    connectionFilter: { accept: ['203.0.113.5'], exceptions: ['postmaster@example.test'] },
    ...over,
  });
}

/** `store` may be shared by two fixtures (two nodes), each with its own clock at the same time; `dnsbl` answers step 9. */
export function limitsFixture(
  rules: Rules,
  store: StateStore = new MemoryStateStore(1000),
  start = 1_700_000_000_000,
  dnsbl: DnsblLookup = { lookup: () => Promise.reject(new Error('no DNSBL rules here')) },
): LimitsFixture {
  let t = start;
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  const load: ResourceSample = { eventLoopLagMs: 0, rssMb: 100 };
  const events: string[] = [];
  const record: LimitEvents = {
    rateLimited: (limit) => events.push(`rate ${limit}`),
    greylisting: (outcome) => events.push(`grey ${outcome}`),
    backPressure: (under, reason) => events.push(`pressure ${under} ${reason}`),
  };
  const engine = new PolicyEngine(rules, {
    dnsbl,
    health: { isEnforced: () => true },
    directory: DirectoryModel.fromRules(rules),
    limits: { store, clock, probe: { sample: () => load, stop: () => undefined }, events: record },
  });
  return { engine, store, clock, load, events };
}
