import type { StepCheck } from './steps.js';

/** What a filter decided, and the SMTP reply it becomes. */
export type Action = 'continue' | 'accept' | 'reject' | 'drop' | 'tempfail' | 'archive' | 'relay';

export interface Verdict {
  action: Action;
  /** SMTP reply code the client sees (0 when nothing is written, e.g. a `continue`). */
  code: number;
  /** RFC 3463 enhanced status code, e.g. `5.7.1`. */
  enhanced: string;
  text: string;
  /** The guide's step number that decided (2, 5, 6, 7, 9, 10, 11, 12, 15; 0 for protocol checks). */
  step: number;
  /** Short name of the check, e.g. `global deny list`. */
  check: string;
  /** The rule that decided, when a named rule did (DNSBL rule name, list entry). */
  rule?: string;
  /** Set when a report-only rule matched: logged and counted, but the action is not enforced. */
  reportOnly?: boolean;
  /** Harvest protection: hold the reply back this long before writing it. */
  delayMs?: number;
  /** Sender authentication: the mechanism's result and what was done with it (metrics, logs). */
  auth?: AuthLabel;
}

/** What a sender-authentication step found and did: `report` is a report-only enforcement, `exempt` an exempted client or domain. */
export interface AuthLabel {
  mechanism: 'spf' | 'dkim' | 'dmarc' | 'arc';
  result: string;
  action: 'accept' | 'reject' | 'tempfail' | 'quarantine' | 'report' | 'exempt';
}

/** One line of the explanation `portcullis check` prints and the logs carry. */
export interface TraceEntry {
  step: number;
  check: string;
  outcome: string;
  rule?: string;
}

/** The full reply line(s) a verdict puts on the wire, e.g. `550 5.7.1 Access denied`. */
export function replyLine(v: Pick<Verdict, 'code' | 'enhanced' | 'text'>): string {
  return v.enhanced ? `${v.code} ${v.enhanced} ${v.text}` : `${v.code} ${v.text}`;
}

/**
 * A trace line at one of the guide's steps. Built field by field: an object spread of the step
 * (`{ ...STEPS.x, outcome }`) costs V8 about a microsecond, and a session writes a dozen of these.
 */
export function traceEntry({ step, check }: StepCheck, outcome: string, rule?: string): TraceEntry {
  return rule === undefined ? { step, check, outcome } : { step, check, outcome, rule };
}

/** Build a verdict at one of the guide's steps (see steps.ts); a helper so call sites stay one line. */
export function verdict(action: Action, code: number, enhanced: string, text: string, { step, check }: StepCheck, rule?: string): Verdict {
  return rule === undefined
    ? { action, code, enhanced, text, step, check }
    : { action, code, enhanced, text, step, check, rule };
}
