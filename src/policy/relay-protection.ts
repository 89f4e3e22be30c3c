import { splitAddress } from '../net/address.js';
import type { CompiledListener, CompiledRules } from './compiled-rules.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

/**
 * Whether a recipient is plainly in one of our domains. Address tricks that some mail servers
 * re-route elsewhere (`user%other@ours`, `other!user@ours`, `"user@other"@ours`, source routes
 * `@ours:user@other`) are never local, so they can never open a relay.
 */
export function isLocalRecipient(rules: CompiledRules, address: string): boolean {
  if (address.startsWith('@')) return false;
  const parts = splitAddress(address);
  if (!parts) return false;
  if (/[%!@]/.test(parts.local)) return false;
  return rules.acceptedDomains.has(parts.domain);
}

/** Relay protection, before step 9: a recipient outside our domains needs a client that may relay. */
export function checkRelay(
  rules: CompiledRules,
  listener: CompiledListener,
  ip: string,
  address: string,
  trace: TraceEntry[],
): { verdict?: Verdict; local: boolean } {
  if (isLocalRecipient(rules, address)) {
    trace.push(traceEntry(STEPS.relayProtection, 'recipient in an accepted domain'));
    return { local: true };
  }
  const relay = listener.relayFrom.match(ip);
  if (relay !== undefined) {
    trace.push(traceEntry(STEPS.relayProtection, `remote recipient; client may relay (${relay})`, relay));
    return { local: false };
  }
  trace.push(traceEntry(STEPS.relayProtection, 'remote recipient and client may not relay: refused'));
  return { local: false, verdict: verdict('reject', 550, '5.7.1', 'Unable to relay', STEPS.relayProtection) };
}
