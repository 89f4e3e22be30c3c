/**
 * A recorded session in the shape `portcullis check` prints (check/render.ts): one simulation
 * result per mail transaction, the first with the connection and HELO, built from the recorded
 * verdicts and traces, never from a new run of the rules.
 */
import type { DecisionRecord, RecordedEvent } from '../../policy/decision-record.js';
import { passedOn, stage, type RcptResult, type SimulationResult, type Stage } from '../check/simulate.js';

const STAGE: Record<RecordedEvent['kind'], Stage> = { connect: 'connect', helo: 'helo', mail: 'mail', rcpt: 'rcpt', data: 'data' };

export function recordTraces(record: DecisionRecord): SimulationResult[] {
  const results: SimulationResult[] = [];
  const reportOnly = record.reportOnly.map(stage);
  let helo = '';
  let current: SimulationResult | undefined;
  const connect = record.events.find((e) => e.kind === 'connect');
  const fresh = (from: string): SimulationResult => ({
    client: record.client,
    listener: record.listener,
    helo,
    from,
    connect: connect ? stage(connect.verdict) : { action: 'accept', step: 2, check: 'IP restrictions' },
    mail: null,
    rcpt: null,
    data: null,
    trace: [],
    reportOnly: results.length === 0 ? reportOnly : [],
  });
  let archived = false;
  for (const event of record.events) {
    if (!current || (event.kind === 'mail' && current.mail !== null)) {
      current = fresh('');
      results.push(current);
    }
    if (event.kind === 'mail') current.from = event.address;
    const s = STAGE[event.kind];
    let recipient: number | undefined;
    if (event.kind === 'helo') {
      helo = event.name;
      current.helo = helo;
    } else if (event.kind === 'mail') {
      archived = event.verdict.action === 'archive';
      current.mail = passedOn(event.verdict, false);
    } else if (event.kind === 'rcpt') {
      current.rcpt ??= [];
      recipient = current.rcpt.length;
      const r: RcptResult = { address: event.address, ...passedOn(event.verdict, archived) };
      current.rcpt.push(r);
    } else if (event.kind === 'data') {
      current.data = stage(event.verdict);
    }
    for (const t of event.trace) current.trace.push(recipient === undefined ? { ...t, stage: s } : { ...t, stage: s, recipient });
  }
  return results;
}
