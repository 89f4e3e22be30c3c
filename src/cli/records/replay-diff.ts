/**
 * What a candidate rule set would have done differently on recorded sessions: recipients and
 * sessions whose outcome changes, grouped by the step and rule that decide the difference (the
 * candidate's refusal for accepted → refused, the recorded refusal for refused → accepted).
 */
import type { DecisionRecord } from '../../policy/decision-record.js';
import type { Verdict } from '../../policy/verdict.js';
import { recipientOutcomes } from './replay-session.js';

export type Direction = 'accepted → refused' | 'refused → accepted';

export interface ChangeGroup {
  direction: Direction;
  step: number;
  check: string;
  rule?: string;
  sessions: number;
  recipients: number;
  /** Transactions whose MAIL FROM changes and that have no recorded recipient (the client sent none after a refusal). */
  senders: number;
  examples: { id: string; client: string; address: string }[];
}

export interface ReplayReport {
  sessions: number;
  recipients: number;
  changedSessions: Record<Direction, number>;
  changedRecipients: Record<Direction, number>;
  changedSenders: Record<Direction, number>;
  groups: ChangeGroup[];
  /** Sessions whose replay asked a zone with no recorded answer, by zone. */
  unrecorded: Record<string, number>;
  /** Records written under each rule-set hash. */
  recordedUnder: Record<string, number>;
  /** Sessions skipped because the candidate has no listener of their name, by listener. */
  noListener: Record<string, number>;
  corrupt: number;
}

const EXAMPLES = 3;
const REFUSED = new Set(['reject', 'drop', 'tempfail']);

export class ReplayDiff {
  private readonly report: ReplayReport = {
    sessions: 0,
    recipients: 0,
    changedSessions: { 'accepted → refused': 0, 'refused → accepted': 0 },
    changedRecipients: { 'accepted → refused': 0, 'refused → accepted': 0 },
    changedSenders: { 'accepted → refused': 0, 'refused → accepted': 0 },
    groups: [],
    unrecorded: {},
    recordedUnder: {},
    noListener: {},
    corrupt: 0,
  };
  private readonly byKey = new Map<string, ChangeGroup>();

  /** One session: the recorded verdicts against the candidate's. */
  add(record: DecisionRecord, candidate: readonly (Verdict | undefined)[], missing: readonly string[]): void {
    const r = this.report;
    r.sessions += 1;
    r.recordedUnder[record.rules] = (r.recordedUnder[record.rules] ?? 0) + 1;
    for (const zone of missing) r.unrecorded[zone] = (r.unrecorded[zone] ?? 0) + 1;
    const live = recipientOutcomes(record, record.events.map((e) => e.verdict));
    const next = recipientOutcomes(record, candidate);
    r.recipients += live.length;
    const touched = new Set<ChangeGroup>();
    let sessionDirection: Direction | undefined;
    live.forEach((before, i) => {
      const after = next[i];
      if (!after || before.accepted === after.accepted) return;
      const direction: Direction = before.accepted ? 'accepted → refused' : 'refused → accepted';
      const decided = (before.accepted ? after.decidedBy : before.decidedBy) as Verdict;
      const group = this.group(direction, decided);
      group.recipients += 1;
      r.changedRecipients[direction] += 1;
      if (group.examples.length < EXAMPLES) group.examples.push({ id: record.id, client: record.client, address: before.address });
      touched.add(group);
    });
    this.senders(record, candidate, touched);
    const wasAccepted = live.some((x) => x.accepted);
    const isAccepted = next.some((x) => x.accepted);
    if (wasAccepted !== isAccepted) sessionDirection = wasAccepted ? 'accepted → refused' : 'refused → accepted';
    if (sessionDirection) r.changedSessions[sessionDirection] += 1;
    for (const g of touched) g.sessions += 1;
  }

  /** A session the candidate cannot replay: its listener is not in the candidate. */
  skip(record: DecisionRecord): void {
    this.report.noListener[record.listener] = (this.report.noListener[record.listener] ?? 0) + 1;
  }

  /**
   * A MAIL FROM whose outcome changes with no recipient recorded after it: what the client would
   * have sent next is unknown, so it is counted apart rather than guessed at.
   */
  private senders(record: DecisionRecord, candidate: readonly (Verdict | undefined)[], touched: Set<ChangeGroup>): void {
    const events = record.events;
    events.forEach((event, i) => {
      if (event.kind !== 'mail') return;
      const next = events.slice(i + 1).findIndex((e) => e.kind === 'mail');
      const tx = events.slice(i + 1, next < 0 ? undefined : i + 1 + next);
      if (tx.some((e) => e.kind === 'rcpt')) return;
      const before = !REFUSED.has(event.verdict.action);
      const v = candidate[i];
      const after = v !== undefined && !REFUSED.has(v.action);
      if (before === after) return;
      const direction: Direction = before ? 'accepted → refused' : 'refused → accepted';
      const group = this.group(direction, before ? (v ?? event.verdict) : event.verdict);
      group.senders += 1;
      this.report.changedSenders[direction] += 1;
      if (group.examples.length < EXAMPLES) group.examples.push({ id: record.id, client: record.client, address: event.address });
      touched.add(group);
    });
  }

  finish(corrupt: number): ReplayReport {
    this.report.corrupt = corrupt;
    this.report.groups = [...this.byKey.values()].sort((a, b) => a.direction.localeCompare(b.direction) || b.recipients - a.recipients || a.step - b.step);
    return this.report;
  }

  private group(direction: Direction, v: Verdict): ChangeGroup {
    const key = `${direction}\u0000${v.step}\u0000${v.check}\u0000${v.rule ?? ''}`;
    let g = this.byKey.get(key);
    if (!g) {
      g = { direction, step: v.step, check: v.check, sessions: 0, recipients: 0, senders: 0, examples: [] };
      if (v.rule !== undefined) g.rule = v.rule;
      this.byKey.set(key, g);
    }
    return g;
  }
}

/** The report as text. */
export function renderReplay(r: ReplayReport, candidate: string): string {
  const out = [`replayed ${r.sessions} session(s), ${r.recipients} recipient(s), against ${candidate}`];
  for (const direction of ['accepted → refused', 'refused → accepted'] as const) {
    const senders = (n: number): string => (n ? `, ${n} sender(s) with no recipient recorded` : '');
    out.push('', `${direction}: ${r.changedSessions[direction]} session(s), ${r.changedRecipients[direction]} recipient(s)${senders(r.changedSenders[direction])}`);
    for (const g of r.groups.filter((x) => x.direction === direction)) {
      out.push(`  step ${String(g.step).padStart(2)}  ${g.check}${g.rule !== undefined ? ` (${g.rule})` : ''}: ${g.sessions} session(s), ${g.recipients} recipient(s)${senders(g.senders)}`);
      for (const e of g.examples) out.push(`      e.g. [${e.id}] ${e.client} <${e.address}>`);
    }
  }
  const zones = Object.entries(r.unrecorded);
  if (zones.length) {
    out.push('', `zones the records have no answer for (their rules saw a lookup error; --live-dns asks them): ${zones.map(([z, n]) => `${z} (${n} session(s))`).join(', ')}`);
  }
  const skipped = Object.entries(r.noListener);
  if (skipped.length) out.push('', `skipped, no such listener in the candidate: ${skipped.map(([l, n]) => `${l} (${n} session(s))`).join(', ')}`);
  if (r.corrupt) out.push('', `skipped ${r.corrupt} corrupt line(s)`);
  return `${out.join('\n')}\n`;
}
