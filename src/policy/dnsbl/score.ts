import type { DnsblScoreListConfig, DnsblScoringConfig } from '../../config/schema.js';
import { describeMatch, matchesRule, type DnsblAnswer, type DnsblAnswerOrPromise } from '../../dns/dnsbl-answer.js';
import type { ZoneHealth } from '../../dns/zone-health.js';
import { STEPS } from '../steps.js';
import { traceEntry, verdict, type Verdict } from '../verdict.js';
import type { DnsblOutcome } from './evaluate.js';
import { formatDnsblMessage } from './message.js';

/** What one list of the scoring mode added to one session's score, and why. */
export interface Contribution {
  list: string;
  zone: string;
  /** Points added to the total: 0 for no listing, a failed lookup or an unhealthy zone. */
  points: number;
  /** The listing codes that earned the points. */
  matchedCodes: string[];
  outcome: string;
  /** The refusal this list gives when it is the top contributor of a score at or above the threshold. */
  refusal?: () => Verdict;
}

/** The session's score: each list's contribution and their sum, against the thresholds. */
export interface ScoreSummary {
  total: number;
  threshold: number;
  allowThreshold?: number;
  contributions: Contribution[];
}

/** `+3`, `-5`, `0`: points as the trace and the `dnsbl` report show them. */
export function signed(points: number): string {
  return points > 0 ? `+${points}` : String(points);
}

/** The codes of a listed answer that earn points under a list's weights, and what they earn. */
function earned(list: DnsblScoreListConfig, codes: string[]): { points: number; matched: string[]; how: string } {
  if (list.weights) {
    const matched = [...new Set(codes)].filter((c) => list.weights?.[c] !== undefined);
    const points = matched.reduce((s, c) => s + (list.weights?.[c] ?? 0), 0);
    return { points, matched, how: matched.map((c) => `${c} ${signed(list.weights?.[c] ?? 0)}`).join(', ') };
  }
  const match = list.match ?? 'any';
  const code = matchesRule(codes, match);
  if (code === undefined) return { points: 0, matched: [], how: '' };
  return { points: list.weight ?? 0, matched: [code], how: `${code} matches ${describeMatch(match)}` };
}

/**
 * One list against its zone's answer: the single place a scoring list is judged. `message` is the
 * template of the refusal it would give (scoring.message when set, else the list's own).
 */
export function scoreList(list: DnsblScoreListConfig, answer: DnsblAnswer, zoneEnforced: boolean, ip: string, message = list.message): Contribution {
  const where = `${answer.queryName}${answer.cached ? ' (cached)' : ''}`;
  if (answer.status === 'error' || answer.status === 'timeout') {
    const why = `${answer.status}${answer.detail ? `: ${answer.detail}` : ''}`;
    return { list: list.name, zone: list.zone, points: 0, matchedCodes: [], outcome: `lookup ${why} (${where}); contributes nothing` };
  }
  if (answer.status === 'not-listed') return { list: list.name, zone: list.zone, points: 0, matchedCodes: [], outcome: `not listed (${where}): 0` };
  const e = earned(list, answer.codes);
  if (e.matched.length === 0) {
    return { list: list.name, zone: list.zone, points: 0, matchedCodes: [], outcome: `listed ${answer.codes.join(', ')} (${where}) but no code has a weight: 0` };
  }
  // Built only for the list whose reply is given: most sessions refuse nothing.
  const refusal = (): Verdict => {
    const text = formatDnsblMessage(message, { ip, ruleName: list.name, provider: list.provider ?? list.zone, txt: answer.txt });
    return verdict('reject', 550, '5.7.1', text, STEPS.dnsblScore, list.name);
  };
  if (!zoneEnforced) {
    return { list: list.name, zone: list.zone, points: 0, matchedCodes: e.matched, outcome: `${e.how} (${where}), but zone ${list.zone} is unhealthy: contributes nothing (would add ${signed(e.points)})` };
  }
  return { list: list.name, zone: list.zone, points: e.points, matchedCodes: e.matched, outcome: `${e.how} (${where}): ${signed(e.points)}`, refusal };
}

/** The sum of the contributions: integers, so the order they arrive in cannot change it. */
export function totalScore(contributions: readonly Contribution[]): number {
  let total = 0;
  for (const c of contributions) total += c.points;
  return total;
}

/** The contribution that decides the reply: the most points, the first written on a tie. */
function top(contributions: readonly Contribution[], sign: 1 | -1): Contribution | undefined {
  let best: Contribution | undefined;
  for (const c of contributions) if (c.points * sign > 0 && (!best || c.points * sign > best.points * sign)) best = c;
  return best;
}

/** Step 9 in scoring mode: every list's answer (looked up in parallel since connect) judged, summed, compared. */
export async function evaluateScore(
  scoring: DnsblScoringConfig,
  answers: ReadonlyMap<string, DnsblAnswerOrPromise>,
  health: ZoneHealth,
  ip: string,
): Promise<DnsblOutcome> {
  // The lookups were all started together at connect (one deadline for all): awaiting them in turn
  // waits no longer than the slowest, and costs fewer promises than Promise.all over async closures.
  const contributions: Contribution[] = [];
  for (const list of scoring.lists) {
    const answer = answers.get(list.zone);
    if (answer) contributions.push(scoreList(list, await answer, health.isEnforced(list.zone), ip, scoring.message ?? list.message));
  }
  const trace = contributions.map((c) => traceEntry(STEPS.dnsblScore, `${c.list}: ${c.outcome}`, c.list));
  const total = totalScore(contributions);
  const score: ScoreSummary = { total, threshold: scoring.threshold, contributions };
  const allow = scoring.allowThreshold;
  if (allow !== undefined) score.allowThreshold = allow;
  const limits = `threshold ${scoring.threshold}${allow !== undefined ? `, allowThreshold ${allow}` : ''}`;
  const worst = top(contributions, 1);
  if (total >= scoring.threshold && worst?.refusal) {
    trace.push(traceEntry(STEPS.dnsblScore, `total ${signed(total)} (${limits}): refused, reply of ${worst.list}, the top contributor`, worst.list));
    return { decisive: worst.refusal(), reportOnly: [], trace, check: STEPS.dnsblScore, score };
  }
  if (allow !== undefined && total <= allow) {
    const best = top(contributions, -1);
    trace.push(traceEntry(STEPS.dnsblScore, `total ${signed(total)} (${limits}): allowlisted, the remaining connection checks skipped`, best?.list));
    const allowed = verdict('accept', 0, '', `score ${total} at or below ${allow}: allowlisted`, STEPS.dnsblScore, best?.list);
    return { allowed, reportOnly: [], trace, check: STEPS.dnsblScore, score };
  }
  trace.push(traceEntry(STEPS.dnsblScore, `total ${signed(total)} (${limits}): neither refused nor allowlisted`));
  return { reportOnly: [], trace, check: STEPS.dnsblScore, score };
}
