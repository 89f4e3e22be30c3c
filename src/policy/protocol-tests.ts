/**
 * The verdicts of the wire tests the edge runs before and between commands (docs/protocol-tests.md):
 * the pre-greeting test (step 1) and unauthorised pipelining (step 1.1). The edge observes the client;
 * these say what that means, so the trace, the decision log and the metrics tell it like every step.
 */
import type { ListenerConfig } from '../config/schema.js';
import { STEPS } from './steps.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';

/** How a client fared at the pre-greeting test: `cached` passed it earlier and was greeted without the pause. */
export type PreGreetingResult = 'pass' | 'cached' | 'fail';

/** What both tests answer a client that fails them, before closing (postscreen's reply). */
function protocolError(step: typeof STEPS.preGreeting | typeof STEPS.pipelining): Verdict {
  return verdict('drop', 554, '5.5.1', 'Protocol error', step);
}

export function preGreetingVerdict(result: PreGreetingResult, pauseMs: number): Verdict {
  if (result === 'fail') return protocolError(STEPS.preGreeting);
  const text = result === 'cached' ? 'passed before (cached): greeted at once' : `silent for the ${pauseMs} ms pause before the greeting`;
  return verdict('continue', 0, '', text, STEPS.preGreeting);
}

/** What `portcullis check` says of the wire tests a listener runs: they judge the client's timing, which a simulation has not got. */
export function wireTestsTrace(settings: ListenerConfig['protocolTests']): TraceEntry[] {
  const out: TraceEntry[] = [];
  if (settings.greetPauseMs > 0) out.push(traceEntry(STEPS.preGreeting, `not simulated: the listener pauses ${settings.greetPauseMs} ms before its greeting; a client that talks first gets 554 5.5.1 Protocol error`));
  if (settings.pipelining) out.push(traceEntry(STEPS.pipelining, 'not simulated: a command sent ahead of a reply where RFC 2920 does not allow it gets 554 5.5.1 Protocol error'));
  return out;
}

/** The client sent a command ahead of a reply where RFC 2920 does not allow it. */
export function pipeliningVerdict(): Verdict {
  return protocolError(STEPS.pipelining);
}
