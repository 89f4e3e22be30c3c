import type { CompiledRules } from './compiled-rules.js';
import { verdict, type TraceEntry, type Verdict } from './verdict.js';

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
    trace.push({ step: 5, check: 'global accept list', outcome: `listed (${accepted}): deny list and DNSBL rules skipped`, rule: accepted });
    trace.push({ step: 6, check: 'global deny list', outcome: 'skipped: client is on the accept list' });
    return verdict('accept', 0, '', 'on the accept list: deny list and DNSBL rules skipped', 5, 'global accept list', accepted);
  }
  trace.push({ step: 5, check: 'global accept list', outcome: 'not listed' });
  const denied = rules.denyList.match(ip);
  if (denied === undefined) {
    trace.push({ step: 6, check: 'global deny list', outcome: 'not listed' });
    return undefined;
  }
  trace.push({ step: 6, check: 'global deny list', outcome: `listed (${denied}): connection dropped`, rule: denied });
  return verdict('drop', 550, '5.7.1', `${ip} is on the deny list`, 6, 'global deny list', denied);
}
