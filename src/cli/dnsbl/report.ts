/**
 * What `portcullis dnsbl` prints, built on the same DNSBL runtime as `serve` (client, cache, zone
 * health) and judged by the policy's own step 9.
 */
import type { DnsblRuleConfig, Rules } from '../../config/schema.js';
import { describeMatch, type DnsblAnswer, type DnsblAnswerOrPromise } from '../../dns/dnsbl-answer.js';
import { dnsblZones, openDnsbl, type DnsblRuntime } from '../../dns/dnsbl-runtime.js';
import type { ZoneStatus } from '../../dns/zone-health.js';
import { normalizeIp } from '../../net/ip.js';
import { evaluateStep9, judgeRule } from '../../policy/dnsbl/evaluate.js';
import { signed, type ScoreSummary } from '../../policy/dnsbl/score.js';
import { replyLine } from '../../policy/verdict.js';
import { systemClock } from '../../runtime/clock.js';

/** What one DNSBL rule made of one address. */
export interface DnsblRuleReport {
  rule: string;
  zone: string;
  provider: string;
  queryName: string;
  status: DnsblAnswer['status'];
  codes: string[];
  errorCodes: string[];
  txt?: string;
  detail?: string;
  /** The rule's match mode, in words. */
  match: string;
  matches: boolean;
  /** A match that rejects (or, for an allow rule, allowlists): not report-only, and the zone not found unhealthy. */
  enforced: boolean;
  /** An allow rule (a DNSWL): a match skips the rest of step 9 and gives no reply. */
  allow: boolean;
  matchedCode?: string;
  /** Why the rule does or does not match, in words. */
  why: string;
  reportOnly: boolean;
  onError: DnsblRuleConfig['onError'];
  zoneHealth: ZoneStatus;
  /** The reply a match gives (or would give, when report-only) to a RCPT TO. */
  reply?: string;
}

/** The whole answer of `portcullis dnsbl IP`. */
export interface DnsblAddressReport {
  ip: string;
  servers: string[];
  rules: DnsblRuleReport[];
  /** Scoring mode: each list's answer and contribution, and the total against the thresholds. */
  score?: DnsblScoreReport;
  /** Step 9 for this address, as the engine decides it: the first enforced match or failure, or the score. */
  decision: { action: 'accept' | 'reject' | 'tempfail' | 'allowlisted'; rule?: string; reply?: string };
}

/** One list of the scoring mode: its answer and what it added. */
export interface DnsblListReport {
  list: string;
  zone: string;
  queryName: string;
  status: DnsblAnswer['status'];
  codes: string[];
  errorCodes: string[];
  txt?: string;
  /** `weight +3 when any matches`, or `weights 127.0.0.2 +3, 127.0.0.4 +1`. */
  weighs: string;
  points: number;
  why: string;
  zoneHealth: ZoneStatus;
}

export interface DnsblScoreReport {
  total: number;
  threshold: number;
  allowThreshold?: number;
  lists: DnsblListReport[];
}

function healthOf(status: Record<string, ZoneStatus>, zone: string): ZoneStatus {
  return status[zone.replace(/\.$/, '').toLowerCase()] ?? { state: undefined, reason: 'not checked' };
}

/** `serve`'s DNSBL runtime after its start-up round of zone checks; a command needs no periodic ones. */
async function openOnce(rules: Rules): Promise<DnsblRuntime> {
  const dnsbl = await openDnsbl(rules, { clock: systemClock });
  dnsbl.close();
  return dnsbl;
}

/** Run the RFC 5782 checks of every zone the rules use, once. */
export async function checkZones(rules: Rules): Promise<Record<string, ZoneStatus>> {
  return (await openOnce(rules)).health.status();
}

/** Check the zones' health, ask every rule's zone about `ip`, and judge each rule. */
export async function reportAddress(rules: Rules, ip: string): Promise<DnsblAddressReport> {
  const clientIp = normalizeIp(ip);
  const dnsbl = await openOnce(rules);
  const dnsblRules = rules.connectionFilter.rules;
  const answers = new Map<string, DnsblAnswerOrPromise>();
  for (const zone of dnsblZones(rules)) answers.set(zone, dnsbl.lookup.lookup(zone, clientIp));
  const status = dnsbl.health.status();
  const reports: DnsblRuleReport[] = [];
  for (const rule of dnsblRules) {
    const a = await (answers.get(rule.zone) as DnsblAnswerOrPromise);
    const zoneHealth = healthOf(status, rule.zone);
    const judged = judgeRule(rule, a, zoneHealth.state !== 'unhealthy', clientIp);
    const provider = rule.provider ?? rule.zone;
    const report: DnsblRuleReport = {
      rule: rule.name,
      zone: rule.zone,
      provider,
      queryName: a.queryName,
      status: a.status,
      codes: a.codes,
      errorCodes: a.errorCodes,
      match: describeMatch(rule.match),
      matches: judged.matchedCode !== undefined,
      enforced: judged.effect === 'reject' || judged.effect === 'allow',
      allow: rule.allow === true,
      why: judged.outcome,
      reportOnly: rule.reportOnly,
      onError: rule.onError,
      zoneHealth,
    };
    if (a.txt !== undefined) report.txt = a.txt;
    if (a.detail !== undefined) report.detail = a.detail;
    if (judged.matchedCode !== undefined) report.matchedCode = judged.matchedCode;
    if (judged.matchedCode !== undefined && judged.verdict && !rule.allow) report.reply = replyLine(judged.verdict);
    reports.push(report);
  }
  const outcome = await evaluateStep9(rules.connectionFilter, answers, dnsbl.health, clientIp);
  const d = outcome.decisive;
  const a = outcome.allowed;
  const decision: DnsblAddressReport['decision'] =
    d && (d.action === 'reject' || d.action === 'tempfail')
      ? { action: d.action, ...(d.rule !== undefined ? { rule: d.rule } : {}), reply: replyLine(d) }
      : a
        ? { action: 'allowlisted', ...(a.rule !== undefined ? { rule: a.rule } : {}) }
        : { action: 'accept' };
  const report: DnsblAddressReport = { ip: clientIp, servers: rules.dns.servers, rules: reports, decision };
  if (outcome.score) report.score = await scoreReport(rules, outcome.score, answers, status);
  return report;
}

/** The scoring lists as the report shows them: the engine's contributions beside each answer. */
async function scoreReport(
  rules: Rules,
  score: ScoreSummary,
  answers: Map<string, DnsblAnswerOrPromise>,
  status: Record<string, ZoneStatus>,
): Promise<DnsblScoreReport> {
  const lists: DnsblListReport[] = [];
  for (const list of rules.connectionFilter.scoring?.lists ?? []) {
    const a = await (answers.get(list.zone) as DnsblAnswerOrPromise);
    const c = score.contributions.find((x) => x.list === list.name);
    const weighs = list.weights
      ? `weights ${Object.entries(list.weights).map(([code, w]) => `${code} ${signed(w)}`).join(', ')}`
      : `weight ${signed(list.weight ?? 0)} when ${describeMatch(list.match ?? 'any')} matches`;
    lists.push({
      list: list.name,
      zone: list.zone,
      queryName: a.queryName,
      status: a.status,
      codes: a.codes,
      errorCodes: a.errorCodes,
      ...(a.txt !== undefined ? { txt: a.txt } : {}),
      weighs,
      points: c?.points ?? 0,
      why: c?.outcome ?? '',
      zoneHealth: healthOf(status, list.zone),
    });
  }
  return {
    total: score.total,
    threshold: score.threshold,
    ...(score.allowThreshold !== undefined ? { allowThreshold: score.allowThreshold } : {}),
    lists,
  };
}
