/**
 * The SMTP events a SessionPolicy judged, in order, each with its verdict and where its trace ends:
 * the inputs a decision record keeps, and what replay feeds back to the same engine.
 */
import type { Verdict } from './verdict.js';

export type SessionEvent =
  | { kind: 'connect' }
  | { kind: 'helo'; name: string }
  | { kind: 'mail'; address: string }
  | { kind: 'rcpt'; address: string }
  | { kind: 'data'; headerFrom?: string };

export type JudgedEvent = SessionEvent & {
  verdict: Verdict;
  /** The length of the session's trace once this event was judged. */
  traceEnd: number;
};
