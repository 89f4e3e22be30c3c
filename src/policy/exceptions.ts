import type { CompiledRules } from './compiled-rules.js';
import { traceEntry, type TraceEntry } from './verdict.js';
import { STEPS } from './steps.js';

/** Step 10: an exception recipient is accepted at once, whatever the DNSBL rules said. */
export function exceptionEntry(rules: CompiledRules, address: string, trace: TraceEntry[]): string | undefined {
  const entry = rules.exceptions.match(address);
  trace.push(
    entry === undefined
      ? traceEntry(STEPS.exceptions, 'not an exception')
      : traceEntry(STEPS.exceptions, `exception (${entry}): accepted, steps ${STEPS.blockedRecipients.step}-${STEPS.directory.step} skipped`, entry),
  );
  return entry;
}
