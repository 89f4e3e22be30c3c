import type { CompiledListener } from './compiled-rules.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

/** Step 2: the listener's own grant/deny list, checked before anything else is read. */
export function checkIpRestrictions(
  listener: CompiledListener,
  ip: string,
  hostname: string,
  trace: TraceEntry[],
): Verdict {
  const { default: mode } = listener.config.ipRestrictions;
  const entry = listener.restrictions.match(ip);
  const granted = mode === 'grant' ? entry === undefined : entry !== undefined;
  const why =
    mode === 'grant'
      ? entry === undefined
        ? 'default grant, not on the exception list'
        : `default grant, but listed as an exception (${entry})`
      : entry === undefined
        ? 'default deny, not on the exception list'
        : `default deny, listed as an exception (${entry})`;
  trace.push(traceEntry(STEPS.ipRestrictions, `${granted ? 'granted' : 'refused'}: ${why}`, entry));
  if (!granted) return verdict('drop', 554, '5.7.1', 'Access denied', STEPS.ipRestrictions, entry);
  // The greeting precedes EHLO, so RFC 2034 gives it no enhanced code.
  return verdict('accept', 220, '', `${hostname} ESMTP`, STEPS.ipRestrictions);
}
