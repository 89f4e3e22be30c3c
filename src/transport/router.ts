import type { ConnectorConfig, Rules } from '../config/schema.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import { AcceptedDomains } from '../net/accepted-domains.js';
import { canonicalDomain } from '../net/domain.js';
import { addressSpaceScore } from './address-space.js';
import { retryDelayMs } from './retry-schedule.js';
import type { RecipientResult } from './types.js';

/** Where mail for one domain goes next. */
export type Route =
  | { kind: 'smarthost'; connector: string; hosts: string[] /* host:port */ }
  | { kind: 'mx'; connector: string | null; domain: string }
  /** No connector matches: failed 5.4.4; or every matching connector is down: deferred 4.4.1. */
  | { kind: 'none'; result: RecipientResult };

/** The connector name the router reports for the forward-unresolved-recipients smart host. */
export const FORWARD_UNRESOLVED_CONNECTOR = 'forward-unresolved';

/**
 * Picks a connector for a domain: among enabled connectors whose address spaces match, the most
 * specific match wins and the lowest cost breaks ties; one marked down is passed over for the next.
 * With no connectors configured, remote mail goes by MX. Local domains (reached only for addresses
 * nobody owns) go to `directory.forwardUnresolvedTo`.
 */
export class Router {
  private readonly connectors: ConnectorConfig[];
  private readonly accepted: AcceptedDomains;
  private readonly forwardUnresolvedTo: string | undefined;
  private readonly downUntil = new Map<string, number>();
  /** Failed attempts through each connector since it last worked: they set its own retry time. */
  private readonly failures = new Map<string, number>();
  private readonly retry: Rules['transport']['retry'];

  constructor(rules: Rules, private readonly clock: Clock = systemClock) {
    this.retry = rules.transport.retry;
    this.connectors = rules.transport.connectors.filter((c) => c.enabled);
    this.accepted = new AcceptedDomains(rules.acceptedDomains);
    this.forwardUnresolvedTo = rules.directory.forwardUnresolvedTo;
  }

  /** The route for a recipient domain, now. */
  route(domain: string): Route {
    const d = canonicalDomain(domain);
    if (this.forwardUnresolvedTo !== undefined && this.accepted.has(d)) {
      return { kind: 'smarthost', connector: FORWARD_UNRESOLVED_CONNECTOR, hosts: [this.forwardUnresolvedTo] };
    }
    if (this.connectors.length === 0) return { kind: 'mx', connector: null, domain: d };
    const matching = this.connectors
      .map((c) => ({ c, score: bestScore(c, d) }))
      .filter((m): m is { c: ConnectorConfig; score: number } => m.score !== null);
    if (matching.length === 0) {
      return { kind: 'none', result: { address: '', outcome: 'failed', code: 550, enhanced: '5.4.4', text: `No route to ${d}: no connector matches` } };
    }
    const up = matching
      .filter((m) => !this.isDown(m.c.name))
      .sort((a, b) => b.score - a.score || a.c.cost - b.c.cost || a.c.name.localeCompare(b.c.name));
    const best = up[0];
    if (best === undefined) {
      const names = matching.map((m) => m.c.name).join(', ');
      return { kind: 'none', result: { address: '', outcome: 'deferred', code: 451, enhanced: '4.4.1', text: `Destination ${d} currently unreachable: connectors down (${names})` } };
    }
    const smartHost = best.c.smartHost;
    if (smartHost !== undefined) {
      return { kind: 'smarthost', connector: best.c.name, hosts: Array.isArray(smartHost) ? smartHost : [smartHost] };
    }
    return { kind: 'mx', connector: best.c.name, domain: d };
  }

  /** Takes a connector out of routing until the given time (ms epoch). */
  markDown(connector: string, until: number): void {
    this.downUntil.set(connector, until);
  }

  /**
   * A connector answered nobody: out of routing until its own retry time, which follows the retry
   * schedule by its consecutive failures (10, 10, 10, then 15 minutes by default), whatever the
   * schedule of the messages that found it down. Attempts already under way when it went down add no
   * failure. Returns the time it comes back.
   */
  markFailed(connector: string): number {
    const now = this.clock.now();
    const until = this.downUntil.get(connector);
    if (until !== undefined && until > now) return until;
    const failures = (this.failures.get(connector) ?? 0) + 1;
    this.failures.set(connector, failures);
    const back = now + retryDelayMs(failures, this.retry);
    this.markDown(connector, back);
    return back;
  }

  /** Puts a connector back into routing at once (it delivered, or the administrator said so). */
  markUp(connector: string): void {
    this.downUntil.delete(connector);
    this.failures.delete(connector);
  }

  /** When the first connector for a domain whose every connector is down comes back; undefined if one is up or none matches. */
  backAt(domain: string): number | undefined {
    const route = this.route(domain);
    if (route.kind !== 'none' || route.result.outcome !== 'deferred') return undefined;
    const d = canonicalDomain(domain);
    const times = this.connectors.filter((c) => bestScore(c, d) !== null).map((c) => this.downUntil.get(c.name) ?? 0);
    return times.length > 0 ? Math.min(...times) : undefined;
  }

  /** Whether a connector is currently marked down. */
  isDown(connector: string): boolean {
    const until = this.downUntil.get(connector);
    return until !== undefined && until > this.clock.now();
  }
}

/** The connector's most specific address-space match for a domain, or null. */
function bestScore(c: ConnectorConfig, domain: string): number | null {
  let best: number | null = null;
  for (const space of c.addressSpaces) {
    const s = addressSpaceScore(space, domain);
    if (s !== null && (best === null || s > best)) best = s;
  }
  return best;
}
