import type { Rules } from '../config/schema.js';
import { normalizeAddress } from '../net/address.js';
import type { Directory } from '../directory/directory-model.js';
import { recipientNotFound } from './recipient-filter.js';
import { traceEntry, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

/** Step 12: with *reject recipients not in the directory* on, an unknown local recipient is refused. */
export function checkDirectory(
  rules: Rules,
  directory: Directory,
  address: string,
  local: boolean,
  trace: TraceEntry[],
): Verdict | undefined {
  if (!rules.recipientFilter.rejectUnknown) {
    trace.push(traceEntry(STEPS.directory, 'skipped: rejectUnknown is off'));
    return undefined;
  }
  if (!local) {
    trace.push(traceEntry(STEPS.directory, 'skipped: recipient is not in an accepted domain'));
    return undefined;
  }
  if (directory.has(normalizeAddress(address))) {
    trace.push(traceEntry(STEPS.directory, 'found in the directory'));
    return undefined;
  }
  trace.push(traceEntry(STEPS.directory, 'not in the directory'));
  return recipientNotFound(address, STEPS.directory);
}
