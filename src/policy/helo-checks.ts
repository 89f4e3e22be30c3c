/**
 * Step 3's optional HELO checks (docs/protocol-tests.md): the name's syntax, that it is not ours, and
 * forward-confirmed reverse DNS of the client. Like a DNSBL match, a failure is the session's verdict
 * and is given at each RCPT TO, so that the client's envelope is logged with it.
 */
import net from 'node:net';
import type { ListenerConfig } from '../config/schema.js';
import type { HostNameLookup } from '../dns/forward-confirmed.js';
import { normalizeIp } from '../net/ip.js';
import { STEPS } from './steps.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';

export type HeloCheckSettings = ListenerConfig['heloChecks'];

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** A fully-qualified host name (letters, digits, hyphens; a top-level label that is not all digits) or an RFC 5321 address literal. */
export function isQualifiedHeloName(name: string): boolean {
  const literal = /^\[(?:IPv6:(.+)|(.+))\]$/i.exec(name);
  if (literal) return literal[1] !== undefined ? net.isIPv6(literal[1]) : net.isIPv4(literal[2] ?? '');
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = bare.split('.');
  return bare.length <= 253 && labels.length >= 2 && labels.every((l) => LDH_LABEL.test(l)) && !/^\d+$/.test(labels.at(-1) ?? '');
}

/** The address a HELO name states, bare or as a literal; undefined for a host name. */
function statedAddress(name: string): string | undefined {
  const literal = /^\[(?:IPv6:)?(.+)\]$/i.exec(name)?.[1] ?? name;
  return net.isIP(literal) ? normalizeIp(literal) : undefined;
}

/** Whether `name` is our host name or one of `ourAddresses`. */
export function isOurName(name: string, hostname: string, ourAddresses: readonly string[]): boolean {
  const bare = (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
  if (bare === hostname.toLowerCase().replace(/\.$/, '')) return true;
  const stated = statedAddress(name);
  return stated !== undefined && ourAddresses.some((a) => net.isIP(a) && normalizeIp(a) === stated);
}

/** The syntax and not-ours checks of one HELO name; undefined when it passes those that are on. */
export function checkHeloName(name: string, settings: HeloCheckSettings, hostname: string, ourAddresses: readonly string[], trace: TraceEntry[]): Verdict | undefined {
  if (settings.syntax) {
    if (!isQualifiedHeloName(name)) {
      trace.push(traceEntry(STEPS.heloChecks, `'${name}' is not a fully-qualified host name or address literal`, 'syntax'));
      return verdict('reject', 550, '5.5.2', `<${name}>: Helo command rejected: need fully-qualified hostname or address literal`, STEPS.heloChecks, 'syntax');
    }
    trace.push(traceEntry(STEPS.heloChecks, `syntax: '${name}' is a fully-qualified host name or address literal`));
  }
  if (settings.notOurs) {
    if (isOurName(name, hostname, ourAddresses)) {
      trace.push(traceEntry(STEPS.heloChecks, `'${name}' is our own name or address`, 'notOurs'));
      return verdict('reject', 550, '5.7.1', `<${name}>: Helo command rejected: you are not me`, STEPS.heloChecks, 'notOurs');
    }
    trace.push(traceEntry(STEPS.heloChecks, `not ours: '${name}' is neither our name nor one of our addresses`));
  }
  return undefined;
}

/** Forward-confirmed reverse DNS of the client; a DNS failure is a temporary refusal, never a 5xx. */
export async function checkFcrdns(ip: string, hostNames: HostNameLookup | undefined, trace: TraceEntry[]): Promise<Verdict | undefined> {
  const found = hostNames ? await hostNames.forwardConfirmed(ip) : { outcome: 'failed' as const, reason: 'no DNS client' };
  if (found.outcome === 'confirmed') {
    trace.push(traceEntry(STEPS.heloChecks, `fcrdns: ${ip} is ${found.name}, and ${found.name} is ${ip}`));
    return undefined;
  }
  trace.push(traceEntry(STEPS.heloChecks, `fcrdns ${found.outcome === 'failed' ? 'lookup failed' : 'not confirmed'}: ${found.reason}`, 'fcrdns'));
  return found.outcome === 'failed'
    ? verdict('tempfail', 451, '4.7.1', `Client host rejected: cannot find your hostname, [${ip}] (temporary DNS failure)`, STEPS.heloChecks, 'fcrdns')
    : verdict('reject', 550, '5.7.1', `Client host rejected: cannot find your hostname, [${ip}]`, STEPS.heloChecks, 'fcrdns');
}
