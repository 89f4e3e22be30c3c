/**
 * The decision record: one JSON line per session holding every input the engine used and every
 * verdict with its trace (docs/records.md). `format` is bumped on any change an older reader would
 * misread; `inputs` is where checks added later keep what they used, by check name, without a bump.
 */
import { z } from 'zod';
import type { RecordedDnsAnswer } from './recorded-ports.js';
import type { JudgedEvent, SessionEvent } from './session-events.js';
import type { TraceEntry, Verdict } from './verdict.js';

export const RECORD_FORMAT = 1;

export type RecordedEvent = SessionEvent & { verdict: Verdict; trace: TraceEntry[] };

export interface DecisionRecord {
  format: typeof RECORD_FORMAT;
  /** The session ID, as in its replies (`[ID]`) and log lines. */
  id: string;
  /** ISO times the session opened and closed. */
  start: string;
  end: string;
  listener: string;
  /** The client address the rules judged (the balancer's report under the PROXY protocol). */
  client: string;
  /** The TCP peer, when the client address came from a PROXY header. */
  peer?: string;
  /** The hash of the rule-set generation the session ran under (`rulesHash`). */
  rules: string;
  events: RecordedEvent[];
  /** Report-only DNSBL matches: what they would have answered. */
  reportOnly: Verdict[];
  dns: RecordedDnsAnswer[];
  /** Whether each DNSBL zone was enforced (its health) when the engine asked. */
  zones: Record<string, boolean>;
  /** The back end's code at the end of each relayed message (or to a refused MAIL FROM). */
  backend: number[];
  /** What other checks used, by check name. */
  inputs: Record<string, unknown>;
  /** Local parts of addresses are keyed hashes (`records.hashLocalParts`). */
  hashed?: true;
}

/** The record of a session, from its judged events and its recorded ports. */
export function recordOf(
  meta: Pick<DecisionRecord, 'id' | 'start' | 'end' | 'listener' | 'client' | 'rules'> & { peer?: string },
  events: readonly JudgedEvent[],
  trace: readonly TraceEntry[],
  observed: Pick<DecisionRecord, 'reportOnly' | 'dns' | 'zones' | 'backend'>,
): DecisionRecord {
  let from = 0;
  const recorded = events.map(({ traceEnd, ...event }) => {
    const slice = trace.slice(from, traceEnd);
    from = traceEnd;
    return { ...event, trace: slice };
  });
  return { format: RECORD_FORMAT, ...meta, events: recorded, ...observed, inputs: {} };
}

const trace = z.object({ step: z.number(), check: z.string(), outcome: z.string(), rule: z.string().optional() });
const verdict = z.object({
  action: z.enum(['continue', 'accept', 'reject', 'drop', 'tempfail', 'archive', 'relay']),
  code: z.number(),
  enhanced: z.string(),
  text: z.string(),
  step: z.number(),
  check: z.string(),
  rule: z.string().optional(),
  reportOnly: z.boolean().optional(),
  delayMs: z.number().optional(),
});
const judged = { verdict, trace: z.array(trace) };
const event = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('connect'), ...judged }),
  z.object({ kind: z.literal('helo'), name: z.string(), ...judged }),
  z.object({ kind: z.literal('mail'), address: z.string(), ...judged }),
  z.object({ kind: z.literal('rcpt'), address: z.string(), ...judged }),
  z.object({ kind: z.literal('data'), headerFrom: z.string().optional(), ...judged }),
]);
const answer = z.object({
  status: z.enum(['listed', 'not-listed', 'error', 'timeout']),
  queryName: z.string(),
  codes: z.array(z.string()),
  errorCodes: z.array(z.string()),
  txt: z.string().optional(),
  detail: z.string().optional(),
  cached: z.boolean(),
  ttlSec: z.number().optional(),
});
const RecordSchema = z.object({
  format: z.literal(RECORD_FORMAT),
  id: z.string().min(1),
  start: z.string(),
  end: z.string(),
  listener: z.string(),
  client: z.string(),
  peer: z.string().optional(),
  rules: z.string(),
  events: z.array(event),
  reportOnly: z.array(verdict),
  dns: z.array(z.object({ zone: z.string(), ip: z.string(), at: z.number(), answer })),
  zones: z.record(z.string(), z.boolean()),
  backend: z.array(z.number()),
  inputs: z.record(z.string(), z.unknown()),
  hashed: z.literal(true).optional(),
});

export type ParsedLine =
  | { kind: 'record'; record: DecisionRecord }
  | { kind: 'corrupt'; reason: string }
  /** Written by a newer Portcullis: its meaning cannot be trusted, so the reader refuses it. */
  | { kind: 'newer'; format: number };

/** One line of a record log, judged: never throws, whatever the bytes. */
export function parseRecordLine(line: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'corrupt', reason: 'not JSON' };
  }
  const format = typeof value === 'object' && value !== null ? (value as { format?: unknown }).format : undefined;
  if (typeof format === 'number' && Number.isInteger(format) && format > RECORD_FORMAT) return { kind: 'newer', format };
  const parsed = RecordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { kind: 'corrupt', reason: `${issue?.path.join('.') || 'record'}: ${issue?.message ?? 'invalid'}` };
  }
  return { kind: 'record', record: parsed.data as DecisionRecord };
}
