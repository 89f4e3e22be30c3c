import type { Rules } from '../../src/config/schema.js';
import { DnsClient } from '../../src/dns/client.js';
import { CachedDnsblLookup } from '../../src/dns/dnsbl-lookup.js';
import type { ZoneHealth } from '../../src/policy/interfaces.js';
import type { PolicyDeps } from '../../src/policy/policy-engine.js';

/** Engine dependencies with real, cached DNSBL lookups against a test DNS server. */
export function realDnsbl(rules: Rules, server: string, health: ZoneHealth): PolicyDeps {
  const client = new DnsClient({ servers: [server], timeoutMs: rules.dns.timeoutMs });
  return { dnsbl: new CachedDnsblLookup({ client, cacheSize: rules.dns.cacheSize, errorTtlSec: 0 }), health };
}
