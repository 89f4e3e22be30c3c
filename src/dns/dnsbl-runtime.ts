import type { Rules } from '../config/schema.js';
import type { Clock } from '../runtime/clock.js';
import { DnsClient } from './client.js';
import { CachedDnsblLookup, type OnDnsblLookup } from './dnsbl-lookup.js';
import { DnsHostNameLookup } from './forward-confirmed.js';
import { ZoneHealthMonitor, zoneStateWord, type OnZoneHealthChange } from './zone-health.js';

/** The DNS side of the engine for one rule set: client, cached lookups and zone health. */
export interface DnsblRuntime {
  client: DnsClient;
  lookup: CachedDnsblLookup;
  health: ZoneHealthMonitor;
  /** Forward-confirmed reverse DNS through the same client (the HELO checks' `fcrdns`). */
  hostNames: DnsHostNameLookup;
  /** One line per zone: `bl.example.net: healthy (…)`. */
  describeHealth(): string[];
  /** Stops the periodic health checks. */
  close(): void;
}

export interface DnsblRuntimeOptions {
  clock: Clock;
  onLookup?: OnDnsblLookup;
  onZoneChange?: OnZoneHealthChange;
  /** Keep checking zone health every `dns.healthCheckIntervalSec` (a server); false checks once (a command). */
  periodic?: boolean;
}

/** Every zone step 9 asks (first-match rules or scoring lists), once, in the order written. */
export function dnsblZones(rules: Rules): string[] {
  const cf = rules.connectionFilter;
  return [...new Set([...cf.rules, ...(cf.scoring?.lists ?? [])].map((r) => r.zone))];
}

/** Build the DNSBL runtime from `rules.dns` and run the start-up zone health round. */
export async function openDnsbl(rules: Rules, options: DnsblRuntimeOptions): Promise<DnsblRuntime> {
  const client = new DnsClient({ servers: rules.dns.servers, timeoutMs: rules.dns.timeoutMs });
  const lookup = new CachedDnsblLookup({
    client,
    cacheSize: rules.dns.cacheSize,
    clock: options.clock,
    ...(options.onLookup ? { onLookup: options.onLookup } : {}),
  });
  const health = new ZoneHealthMonitor({
    client,
    zones: dnsblZones(rules),
    intervalSec: options.periodic ? rules.dns.healthCheckIntervalSec : 0,
    clock: options.clock,
    ...(options.onZoneChange ? { onChange: options.onZoneChange } : {}),
  });
  await health.start();
  return {
    client,
    lookup,
    health,
    hostNames: new DnsHostNameLookup(client),
    describeHealth: () =>
      Object.entries(health.status()).map(([zone, s]) => `${zone}: ${zoneStateWord(s.state)} (${s.reason})`),
    close: () => health.stop(),
  };
}
