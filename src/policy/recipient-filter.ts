import type { CompiledRules } from './compiled-rules.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

/** The reply for a blocked or unknown recipient: the same for both, so blocking is not revealed. */
export function recipientNotFound(address: string, at: typeof STEPS.blockedRecipients | typeof STEPS.directory, rule?: string): Verdict {
  return verdict('reject', 550, '5.1.1', `<${address}>... Recipient not found`, at, rule);
}

/** Step 11: blocked recipients. */
export function checkBlockedRecipient(rules: CompiledRules, address: string, trace: TraceEntry[]): Verdict | undefined {
  const entry = rules.blockedRecipients.match(address);
  if (entry === undefined) {
    trace.push(traceEntry(STEPS.blockedRecipients, 'not blocked'));
    return undefined;
  }
  trace.push(traceEntry(STEPS.blockedRecipients, `blocked (${entry})`, entry));
  return recipientNotFound(address, STEPS.blockedRecipients, entry);
}
