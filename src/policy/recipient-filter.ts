import type { CompiledRules } from './compiled-rules.js';
import { verdict, type TraceEntry, type Verdict } from './verdict.js';

/** The reply for a blocked or unknown recipient: the same for both, so blocking is not revealed. */
export function recipientNotFound(address: string, step: 11 | 12, check: string, rule?: string): Verdict {
  return verdict('reject', 550, '5.1.1', `<${address}>... Recipient not found`, step, check, rule);
}

/** Step 11: blocked recipients. */
export function checkBlockedRecipient(rules: CompiledRules, address: string, trace: TraceEntry[]): Verdict | undefined {
  const check = 'recipient filter (blocked recipients)';
  const entry = rules.blockedRecipients.match(address);
  if (entry === undefined) {
    trace.push({ step: 11, check, outcome: 'not blocked' });
    return undefined;
  }
  trace.push({ step: 11, check, outcome: `blocked (${entry})`, rule: entry });
  return recipientNotFound(address, 11, check, entry);
}
