import type { CompiledRules } from './compiled-rules.js';
import { verdict, type TraceEntry, type Verdict } from './verdict.js';

/** Steps 7 and 15: the blocked-senders filter on the envelope sender or the header `From:`. */
export function checkSender(
  rules: CompiledRules,
  address: string,
  step: 7 | 15,
  trace: TraceEntry[],
): Verdict | undefined {
  const check = step === 7 ? 'sender filter (envelope sender)' : 'sender filter (header From:)';
  const { blankSender, action } = rules.rules.senderFilter;
  let entry: string | undefined;
  if (address === '') {
    // Bounces use the blank sender, so it is only ever matched when the administrator asks.
    entry = blankSender ? '<>' : undefined;
  } else {
    entry = rules.blockedSenders.match(address);
  }
  if (entry === undefined) {
    trace.push({ step, check, outcome: address === '' && !blankSender ? 'blank sender, not filtered' : 'not blocked' });
    return undefined;
  }
  trace.push({ step, check, outcome: `blocked (${entry}): action ${action}`, rule: entry });
  if (action === 'archive') {
    const text = step === 7 ? `<${address}>...Sender OK` : 'Message accepted';
    return verdict('archive', 250, step === 7 ? '2.1.0' : '2.6.0', text, step, check, entry);
  }
  return verdict(action, 550, '5.1.0', 'Sender Denied', step, check, entry);
}
