/**
 * `dnsbl --stats`: which list earns its place, from the decision records. For each DNSBL rule of
 * the rule set: sessions whose recorded answer it matches (judged by the engine's judgeRule), the
 * hits no other list or rule would have refused (checked by replaying the session without it),
 * overlap with every other list, and the share of its hits whose other signals disagree.
 */
import type { Rules } from '../../config/schema.js';
import { DirectoryModel } from '../../directory/directory-model.js';
import type { DecisionRecord } from '../../policy/decision-record.js';
import { judgeRule } from '../../policy/dnsbl/evaluate.js';
import { PolicyEngine } from '../../policy/policy-engine.js';
import { STEPS } from '../../policy/steps.js';
import { recipientOutcomes, replaySession } from '../records/replay-session.js';

export interface ListStats {
  rule: string;
  zone: string;
  reportOnly: boolean;
  /** Sessions whose recorded answer matches the rule. */
  hits: number;
  /** Hits where, without this rule, every recipient it refused would have been accepted. */
  unique: number;
  /** Hits shared with each other rule. */
  overlap: Record<string, number>;
  /** Hits whose other signals disagree: accept list, an exception recipient let through, or the back end took a message. */
  disagree: number;
  /** disagree / hits (0 without hits). */
  disagreeShare: number;
}

export interface DnsblStats {
  sessions: number;
  lists: ListStats[];
  corrupt: number;
}

/** Other signals say this client's mail is wanted. */
function othersDisagree(record: DecisionRecord): boolean {
  const accepted = record.events.some((e) => e.trace.some((t) => t.step === STEPS.acceptList.step && t.rule !== undefined));
  const exception = record.events.some((e) => e.kind === 'rcpt' && e.verdict.action === 'accept' && e.verdict.step === STEPS.exceptions.step);
  return accepted || exception || record.backend.some((code) => code < 400);
}

export class DnsblStatsCollector {
  private readonly lists: ListStats[];
  private readonly without: PolicyEngine[];
  private sessions = 0;

  constructor(private readonly rules: Rules) {
    const names = rules.connectionFilter.rules.map((r) => r.name);
    this.lists = rules.connectionFilter.rules.map((r) => ({
      rule: r.name,
      zone: r.zone,
      reportOnly: r.reportOnly,
      hits: 0,
      unique: 0,
      overlap: Object.fromEntries(names.filter((n) => n !== r.name).map((n) => [n, 0])),
      disagree: 0,
      disagreeShare: 0,
    }));
    this.without = rules.connectionFilter.rules.map((r) => {
      const changed = structuredClone(rules);
      changed.connectionFilter.rules = changed.connectionFilter.rules.filter((x) => x.name !== r.name);
      return new PolicyEngine(changed, { dnsbl: { lookup: () => Promise.reject(new Error('unused')) }, health: { isEnforced: () => true }, directory: DirectoryModel.fromRules(changed) });
    });
  }

  async add(record: DecisionRecord): Promise<void> {
    this.sessions += 1;
    const hit = this.rules.connectionFilter.rules.map((rule) => {
      const recorded = record.dns.find((d) => d.zone === rule.zone);
      return recorded !== undefined && judgeRule(rule, recorded.answer, record.zones[rule.zone] ?? true, record.client).matchedCode !== undefined;
    });
    const disagrees = othersDisagree(record);
    for (const [i, stats] of this.lists.entries()) {
      if (!hit[i]) continue;
      stats.hits += 1;
      if (disagrees) stats.disagree += 1;
      for (const [j, other] of this.lists.entries()) if (j !== i && hit[j]) stats.overlap[other.rule] = (stats.overlap[other.rule] ?? 0) + 1;
      if (await this.unique(record, i)) stats.unique += 1;
    }
  }

  finish(corrupt: number): DnsblStats {
    for (const s of this.lists) s.disagreeShare = s.hits ? s.disagree / s.hits : 0;
    return { sessions: this.sessions, lists: this.lists, corrupt };
  }

  private async unique(record: DecisionRecord, i: number): Promise<boolean> {
    const name = this.lists[i]?.rule;
    const live = recipientOutcomes(record, record.events.map((e) => e.verdict));
    const refusedByIt = live.filter((r) => r.decidedBy?.step === STEPS.dnsbl.step && r.decidedBy.rule === name);
    if (refusedByIt.length === 0) return false;
    const engine = this.without[i];
    if (!engine?.compiled.listeners.has(record.listener)) return false;
    const next = recipientOutcomes(record, (await replaySession(engine, record)).verdicts);
    return refusedByIt.every((r) => next.find((n) => n.event === r.event)?.accepted === true);
  }
}

export function renderStats(s: DnsblStats): string {
  if (s.lists.length === 0) return 'no DNSBL rules configured\n';
  const out = [`${s.sessions} recorded session(s)`, ''];
  const width = Math.max(4, ...s.lists.map((l) => l.rule.length));
  out.push(`${'list'.padEnd(width)}  ${'hits'.padStart(7)}  ${'unique'.padStart(7)}  ${'others disagree'.padStart(15)}`);
  for (const l of s.lists) {
    const share = `${l.disagree} (${(l.disagreeShare * 100).toFixed(1)}%)`;
    out.push(`${l.rule.padEnd(width)}  ${String(l.hits).padStart(7)}  ${String(l.unique).padStart(7)}  ${share.padStart(15)}${l.reportOnly ? '  report only' : ''}`);
  }
  if (s.lists.length > 1) {
    out.push('', 'overlap (sessions both lists hit):');
    for (const l of s.lists) out.push(`  ${l.rule.padEnd(width)}  ${Object.entries(l.overlap).map(([n, c]) => `${n}: ${c}`).join(', ')}`);
  }
  if (s.corrupt) out.push('', `skipped ${s.corrupt} corrupt line(s)`);
  return `${out.join('\n')}\n`;
}
