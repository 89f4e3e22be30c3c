import type { Rules } from '../config/schema.js';
import type { Clock } from '../policy/interfaces.js';
import { systemClock } from '../policy/interfaces.js';
import { DnsClient } from './client.js';
import { CachedDnsblLookup, type OnDnsblLookup } from './dnsbl-lookup.js';
import { ZoneHealthMonitor, type OnZoneHealthChange } from './zone-health.js';

/** The DNSBL side of a running edge: the cached lookup and the zone health monitor, on one client. */
export interface DnsblService {
  lookup: CachedDnsblLookup;
  health: ZoneHealthMonitor;
  /** Run the start-up health round (awaited), then keep checking every interval. */
  start(): Promise<void>;
  /** Stop the periodic health checks. */
  stop(): void;
}

export interface DnsblServiceHooks {
  clock?: Clock;
  onLookup?: OnDnsblLookup;
  onZoneChange?: OnZoneHealthChange;
}

/** Build lookup and health monitor from the rules' `dns:` section and DNSBL rule zones. */
export function createDnsblService(rules: Rules, hooks: DnsblServiceHooks = {}): DnsblService {
  const client = new DnsClient({ servers: rules.dns.servers, timeoutMs: rules.dns.timeoutMs });
  const clock = hooks.clock ?? systemClock;
  const lookup = new CachedDnsblLookup({
    client,
    cacheSize: rules.dns.cacheSize,
    clock,
    ...(hooks.onLookup ? { onLookup: hooks.onLookup } : {}),
  });
  const health = new ZoneHealthMonitor({
    client,
    zones: [...new Set(rules.connectionFilter.rules.map((r) => r.zone))],
    intervalSec: rules.dns.healthCheckIntervalSec,
    clock,
    ...(hooks.onZoneChange ? { onChange: hooks.onZoneChange } : {}),
  });
  return { lookup, health, start: () => health.start(), stop: () => health.stop() };
}
