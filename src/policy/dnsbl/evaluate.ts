import type { DnsblRuleConfig, DnsblScoringConfig } from '../../config/schema.js';
import type { DnsblAnswer, DnsblAnswerOrPromise } from '../../dns/dnsbl-answer.js';
import type { ZoneHealth } from '../../dns/zone-health.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from '../verdict.js';
import { describeMatch, matchesRule } from '../../dns/dnsbl-answer.js';
import { formatDnsblMessage } from './message.js';
import { STEPS, type StepCheck } from '../steps.js';
import { evaluateScore, type ScoreSummary } from './score.js';

/** What the DNSBL rules concluded for one session: the deciding verdict, and report-only matches. */
export interface DnsblOutcome {
  /** A reject (550 5.7.1) or, for a fail-closed rule whose lookup failed, a tempfail (451 4.7.1). */
  decisive?: Verdict;
  /** An allowlist hit (an allow rule, or a score at or below allowThreshold): the client skips the rest of step 9. */
  allowed?: Verdict;
  /** Report-only rules that matched: counted and logged, never enforced. */
  reportOnly: Verdict[];
  trace: TraceEntry[];
  /** The check the session's step 9 lines are written under: DNSBL rules, or DNSBL score. */
  check: StepCheck;
  /** In scoring mode, each list's contribution and the total. */
  score?: ScoreSummary;
}

/** What one rule makes of one answer. */
export interface RuleJudgement {
  /** `reject`/`tempfail`/`allow` decide step 9; `report` is a report-only match; `pass` lets the next rule decide. */
  effect: 'reject' | 'tempfail' | 'allow' | 'report' | 'pass';
  /** The listing code that satisfied the rule's match, if one did (enforced or not). */
  matchedCode?: string;
  /** The reply the rule gives, or would give when report-only or its zone is unhealthy. */
  verdict?: Verdict;
  /** In words, for the trace and the `dnsbl` report. */
  outcome: string;
}

/** One rule against its zone's answer: the single place a DNSBL rule is judged. */
export function judgeRule(rule: DnsblRuleConfig, answer: DnsblAnswer, zoneEnforced: boolean, ip: string): RuleJudgement {
  const where = `${answer.queryName}${answer.cached ? ' (cached)' : ''}`;
  if (answer.status === 'error' || answer.status === 'timeout') {
    const why = `${answer.status}${answer.detail ? `: ${answer.detail}` : ''}`;
    // An unhealthy zone's rule holds nothing back, not even by failing closed. An unreachable zone's
    // rule does fail closed: that is what `tempfail` is for, even if no lookup has worked since start-up.
    if (rule.onError === 'tempfail' && !rule.reportOnly && zoneEnforced) {
      return {
        effect: 'tempfail',
        verdict: verdict('tempfail', 451, '4.7.1', `Block list lookup failed (${rule.name}), try again later`, STEPS.dnsbl, rule.name),
        outcome: `lookup ${why} (${where}); rule fails closed`,
      };
    }
    const unhealthy = zoneEnforced ? '' : `, and zone ${rule.zone} is unhealthy: not enforced`;
    return { effect: 'pass', outcome: `lookup ${why} (${where}); not a listing${unhealthy}` };
  }
  const errors = answer.errorCodes.length ? `; ignored error codes ${answer.errorCodes.join(', ')}` : '';
  if (answer.status === 'not-listed') return { effect: 'pass', outcome: `not listed (${where})${errors}` };
  const code = matchesRule(answer.codes, rule.match);
  if (code === undefined) {
    return { effect: 'pass', outcome: `listed ${answer.codes.join(', ')} (${where}) but no code matches ${describeMatch(rule.match)}${errors}` };
  }
  const text = formatDnsblMessage(rule.message, { ip, ruleName: rule.name, provider: rule.provider ?? rule.zone, txt: answer.txt });
  // An allow rule writes no reply of its own: like the accept list, it only skips the block rules.
  const v = rule.allow
    ? verdict('accept', 0, '', `allowlisted by ${rule.name}: the remaining DNSBL rules skipped`, STEPS.dnsAllowlist, rule.name)
    : verdict('reject', 550, '5.7.1', text, STEPS.dnsbl, rule.name);
  if (!zoneEnforced) return { effect: 'pass', matchedCode: code, verdict: v, outcome: `${code} matches, but zone ${rule.zone} is unhealthy: not enforced` };
  if (rule.reportOnly) {
    return { effect: 'report', matchedCode: code, verdict: v, outcome: `${code} matches ${describeMatch(rule.match)} (${where}); report only, not enforced` };
  }
  if (rule.allow) {
    return { effect: 'allow', matchedCode: code, verdict: v, outcome: `${code} matches ${describeMatch(rule.match)} (${where}): allowlisted, the remaining DNSBL rules skipped` };
  }
  return { effect: 'reject', matchedCode: code, verdict: v, outcome: `${code} matches ${describeMatch(rule.match)} (${where})` };
}

/**
 * Step 9: rules in their configured order, the first enforced match decides. A report-only match
 * is recorded and the walk goes on, so adding a trial list never disables the enforced ones. Allow
 * rules come first (load.ts sees to it), so an allowlist hit skips every block rule. Answers already
 * in hand (cached ones) are judged in this turn; the walk waits only at an answer still asked.
 */
export function evaluateDnsbl(
  rules: DnsblRuleConfig[],
  answers: ReadonlyMap<string, DnsblAnswerOrPromise>,
  health: ZoneHealth,
  ip: string,
): DnsblOutcome | Promise<DnsblOutcome> {
  if (rules.length === 0) return noDnsblRules();
  return walkRules({ rules, answers, health, ip, trace: [], reportOnly: [] }, 0);
}

/** One session's walk through the DNSBL rules: what it judges with, and what it has found so far. */
interface RuleWalk {
  rules: DnsblRuleConfig[];
  answers: ReadonlyMap<string, DnsblAnswerOrPromise>;
  health: ZoneHealth;
  ip: string;
  trace: TraceEntry[];
  reportOnly: Verdict[];
}

/** The rules from `from` on; settled in this turn unless an answer is still a promise. */
function walkRules(walk: RuleWalk, from: number): DnsblOutcome | Promise<DnsblOutcome> {
  const { rules, answers } = walk;
  for (let i = from; i < rules.length; i++) {
    const rule = rules[i] as DnsblRuleConfig;
    const answer = answers.get(rule.zone);
    if (answer === undefined) continue;
    if (answer instanceof Promise) return answer.then((settled) => judgedRule(walk, rule, settled) ?? walkRules(walk, i + 1));
    const decided = judgedRule(walk, rule, answer);
    if (decided) return decided;
  }
  return { reportOnly: walk.reportOnly, trace: walk.trace, check: STEPS.dnsbl };
}

/** One rule judged and traced; the outcome when it decides step 9. */
function judgedRule(walk: RuleWalk, rule: DnsblRuleConfig, answer: DnsblAnswer): DnsblOutcome | undefined {
  const { trace, reportOnly } = walk;
  const j = judgeRule(rule, answer, walk.health.isEnforced(rule.zone), walk.ip);
  trace.push(traceEntry(rule.allow ? STEPS.dnsAllowlist : STEPS.dnsbl, `${rule.name}: ${j.outcome}`, rule.name));
  if (j.effect === 'report' && j.verdict) reportOnly.push({ ...j.verdict, reportOnly: true });
  if (j.effect === 'allow' && j.verdict) return { allowed: j.verdict, reportOnly, trace, check: STEPS.dnsbl };
  if ((j.effect === 'reject' || j.effect === 'tempfail') && j.verdict) return { decisive: j.verdict, reportOnly, trace, check: STEPS.dnsbl };
  return undefined;
}

/** Step 9 when the rule set has no DNSBL rule and no scoring: nothing to look up or wait for. */
export function noDnsblRules(): DnsblOutcome {
  return { reportOnly: [], trace: [traceEntry(STEPS.dnsbl, 'no DNSBL rules configured')], check: STEPS.dnsbl };
}

/** Step 9 in the mode the rule set chose: the scoring lists when `scoring` is set, else the first-match rules. */
export function evaluateStep9(
  connectionFilter: { rules: DnsblRuleConfig[]; scoring?: DnsblScoringConfig | undefined },
  answers: ReadonlyMap<string, DnsblAnswerOrPromise>,
  health: ZoneHealth,
  ip: string,
): DnsblOutcome | Promise<DnsblOutcome> {
  const { scoring } = connectionFilter;
  return scoring ? evaluateScore(scoring, answers, health, ip) : evaluateDnsbl(connectionFilter.rules, answers, health, ip);
}
