import type { Rules } from '../../src/config/schema.js';
import { DnsClient } from '../../src/dns/client.js';
import { CachedDnsblLookup } from '../../src/dns/dnsbl-lookup.js';
import type { ZoneHealth } from '../../src/dns/zone-health.js';
import { DirectoryModel } from '../../src/directory/directory-model.js';
import type { SessionDeps } from '../../src/policy/session-policy.js';

/** Engine dependencies with real, cached DNSBL lookups against a test DNS server and the rules' directory. */
export function realDnsbl(rules: Rules, server: string, health: ZoneHealth): SessionDeps {
  const client = new DnsClient({ servers: [server], timeoutMs: rules.dns.timeoutMs });
  return {
    dnsbl: new CachedDnsblLookup({ client, cacheSize: rules.dns.cacheSize, errorTtlSec: 0 }),
    health,
    directory: DirectoryModel.fromRules(rules),
  };
}
