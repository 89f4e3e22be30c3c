/** The narrow interfaces through which the decision engine reaches the outside world. */

/** Result of asking one DNSBL zone about one address. */
export interface DnsblAnswer {
  /** listed: at least one A record in 127.0.0.0/8 that is not an operator error code. */
  status: 'listed' | 'not-listed' | 'error' | 'timeout';
  queryName: string;
  /** Listing codes (dotted quads in 127/8, error codes excluded), in answer order. */
  codes: string[];
  /** A records that were errors, never listings (outside 127/8, 127.255.255.x, 127.0.1.255, 127.0.0.255). */
  errorCodes: string[];
  /** The provider's TXT record for the address, when it has one. */
  txt?: string;
  /** Human-readable reason for `error` / `timeout`. */
  detail?: string;
  /** Whether this answer came from the cache. */
  cached: boolean;
}

/** Asks a DNSBL zone about an address (cached, deadline-bounded). */
export interface DnsblLookup {
  lookup(zone: string, ip: string): Promise<DnsblAnswer>;
}

/** RFC 5782 zone health, as last checked. */
export interface ZoneHealth {
  /** False only while the zone's last check found it answering wrongly (unhealthy); an unreachable zone is enforced. */
  isEnforced(zone: string): boolean;
}

/** Who exists: the directory the edge checks at step 12. */
export interface Directory {
  has(address: string): boolean;
}

// One clock for the whole process; the policy takes it through its ports like everything else.
export { systemClock, type Clock } from '../runtime/clock.js';
