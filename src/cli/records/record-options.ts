/** The `--records PATH` flag of replay, explain and dnsbl --stats: by default the rule set's `records.path`. */
import type { Rules } from '../../config/schema.js';

export const recordsOption = { records: { type: 'string' } } as const;

/** The record log to read, or undefined when neither `--records` nor `records.path` names one. */
export function recordsPath(flag: string | undefined, rules: Rules | undefined): string | undefined {
  return flag ?? rules?.records?.path;
}
