import type { CompiledRules } from './compiled-rules.js';
import { STEPS } from './steps.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';

/** Steps 7 and 15: the blocked-senders filter on the envelope sender or the header `From:`. */
export function checkSender(
  rules: CompiledRules,
  address: string,
  at: typeof STEPS.envelopeSender | typeof STEPS.headerFrom,
  trace: TraceEntry[],
): Verdict | undefined {
  const { blankSender, action } = rules.rules.senderFilter;
  let entry: string | undefined;
  if (address === '') {
    // Bounces use the blank sender, so it is only ever matched when the administrator asks.
    entry = blankSender ? '<>' : undefined;
  } else {
    entry = rules.blockedSenders.match(address);
  }
  if (entry === undefined) {
    trace.push(traceEntry(at, address === '' && !blankSender ? 'blank sender, not filtered' : 'not blocked'));
    return undefined;
  }
  trace.push(traceEntry(at, `blocked (${entry}): action ${action}`, entry));
  if (action === 'archive') {
    const envelope = at === STEPS.envelopeSender;
    return verdict('archive', 250, envelope ? '2.1.0' : '2.6.0', envelope ? `<${address}>...Sender OK` : 'Message accepted', at, entry);
  }
  return verdict(action, 550, '5.1.0', 'Sender Denied', at, entry);
}
