import type { CompiledRules } from './compiled-rules.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

/** Step 5: whether the client is on the global accept list (the entry that matched, if any). */
export function acceptListEntry(rules: CompiledRules, ip: string): string | undefined {
  return rules.acceptList.match(ip);
}

/**
 * Steps 5-6 at MAIL FROM: the accept list skips the deny list (an `accept` verdict that writes no
 * reply: the sender and recipient filters still decide); the deny list drops the connection.
 */
export function checkAcceptDeny(
  rules: CompiledRules,
  ip: string,
  accepted: string | undefined,
  trace: TraceEntry[],
): Verdict | undefined {
  if (accepted !== undefined) {
    trace.push(traceEntry(STEPS.acceptList, `listed (${accepted}): deny list and DNSBL rules skipped`, accepted));
    trace.push(traceEntry(STEPS.denyList, 'skipped: client is on the accept list'));
    return verdict('accept', 0, '', 'on the accept list: deny list and DNSBL rules skipped', STEPS.acceptList, accepted);
  }
  trace.push(traceEntry(STEPS.acceptList, 'not listed'));
  const denied = rules.denyList.match(ip);
  if (denied === undefined) {
    trace.push(traceEntry(STEPS.denyList, 'not listed'));
    return undefined;
  }
  trace.push(traceEntry(STEPS.denyList, `listed (${denied}): connection dropped`, denied));
  return verdict('drop', 550, '5.7.1', `${ip} is on the deny list`, STEPS.denyList, denied);
}
