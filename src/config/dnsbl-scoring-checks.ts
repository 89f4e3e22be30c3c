/**
 * The checks of step 9's scoring mode and allow rules that the schema cannot express: thresholds a
 * score can never reach (or that every client reaches), weights on codes that are never listings,
 * allow rules that could not take effect where they are written. Each finding is a path and a reason;
 * load.ts puts the file and line to it.
 */
import { isIPv4 } from 'node:net';
import { isListingCode } from '../dns/dnsbl-answer.js';
import type { DnsblMatch, DnsblScoreListConfig, Rules } from './schema.js';

type Path = (string | number)[];
export type ScoringFinding = [Path, string];

/** The lowest and highest points one list can add to a session's score. */
export function contributionRange(list: DnsblScoreListConfig): { min: number; max: number } {
  const weights = list.weights ? Object.values(list.weights) : [list.weight ?? 0];
  return {
    min: weights.filter((w) => w < 0).reduce((s, w) => s + w, 0),
    max: weights.filter((w) => w > 0).reduce((s, w) => s + w, 0),
  };
}

/** Why a code written in a rule can never be a listing, or undefined when it can be one. */
function codeProblem(code: string): string | undefined {
  if (!isIPv4(code)) return `'${code}' is not an IPv4 address`;
  if (!code.startsWith('127.')) return `'${code}' is outside 127.0.0.0/8: answers there are errors, never listings`;
  if (!isListingCode(code)) return `'${code}' is an operator error code (127.255.255.0/24, 127.0.1.255, 127.0.0.255), never a listing, so nothing written on it could ever count`;
  return undefined;
}

function matchCodeProblems(path: Path, match: DnsblMatch | undefined): ScoringFinding[] {
  if (match === undefined || match === 'any') return [];
  if (!('codes' in match)) {
    const [key, mask] = 'mask' in match ? (['mask', match.mask] as const) : (['maskAny', match.maskAny] as const);
    if (!isIPv4(mask)) return [[[...path, key], `'${mask}' is not a dotted quad such as 0.0.0.6`]];
    return mask === '0.0.0.0' ? [[[...path, key], `mask 0.0.0.0 ${key === 'mask' ? 'matches every code; use match: any' : 'matches no code'}`]] : [];
  }
  return match.codes.flatMap((c, i): ScoringFinding[] => {
    const reason = codeProblem(c);
    return reason ? [[[...path, 'codes', i], reason]] : [];
  });
}

function listProblems(list: DnsblScoreListConfig, path: Path): ScoringFinding[] {
  const out: ScoringFinding[] = [];
  if (list.weight === undefined && list.weights === undefined) out.push([[...path, 'weight'], 'a list needs a weight (or weights per code)']);
  if (list.weight !== undefined && list.weights !== undefined) out.push([[...path, 'weights'], 'give either weight or weights per code, not both']);
  if (list.weights !== undefined && list.match !== undefined) out.push([[...path, 'match'], 'weights per code are the match: drop match, or use weight']);
  if (list.weight === 0) out.push([[...path, 'weight'], 'a weight of 0 counts nothing: remove the list or give it a weight']);
  for (const [code, w] of Object.entries(list.weights ?? {})) {
    const reason = codeProblem(code);
    if (reason) out.push([[...path, 'weights', code], reason]);
    else if (w === 0) out.push([[...path, 'weights', code], 'a weight of 0 counts nothing: remove the code']);
  }
  if (list.weights !== undefined && Object.keys(list.weights).length === 0) out.push([[...path, 'weights'], 'weights per code is empty']);
  out.push(...matchCodeProblems([...path, 'match'], list.match));
  return out;
}

function scoringProblems(rules: Rules): ScoringFinding[] {
  const scoring = rules.connectionFilter.scoring;
  if (!scoring) return [];
  const base: Path = ['connectionFilter', 'scoring'];
  const out: ScoringFinding[] = [];
  if (rules.connectionFilter.rules.length > 0) {
    out.push([base, 'step 9 runs either first-match rules (connectionFilter.rules) or scoring, not both: move the rules into scoring.lists']);
  }
  if (scoring.lists.length === 0) out.push([[...base, 'lists'], 'scoring needs at least one list']);
  const names = new Map<string, number>();
  scoring.lists.forEach((list, i) => {
    const prior = names.get(list.name);
    if (prior !== undefined) out.push([[...base, 'lists', i, 'name'], `duplicate list name '${list.name}' (also lists[${prior}])`]);
    else names.set(list.name, i);
    out.push(...listProblems(list, [...base, 'lists', i]));
  });
  if (out.length > 0) return out;

  const ranges = scoring.lists.map(contributionRange);
  const highest = ranges.reduce((s, r) => s + r.max, 0);
  const lowest = ranges.reduce((s, r) => s + r.min, 0);
  if (scoring.threshold <= 0) {
    out.push([[...base, 'threshold'], `threshold ${scoring.threshold} refuses every client: one no list names scores 0; use a threshold above 0`]);
  } else if (scoring.threshold > highest) {
    out.push([[...base, 'threshold'], `threshold ${scoring.threshold} can never be reached: the lists add up to at most ${highest}`]);
  }
  const allow = scoring.allowThreshold;
  if (allow === undefined) return out;
  if (allow >= scoring.threshold) {
    out.push([[...base, 'allowThreshold'], `allowThreshold ${allow} must be below threshold ${scoring.threshold}`]);
  } else if (allow >= 0) {
    out.push([[...base, 'allowThreshold'], `allowThreshold ${allow} allowlists every client no list names (score 0); use a value below 0`]);
  } else if (allow < lowest) {
    out.push([[...base, 'allowThreshold'], `allowThreshold ${allow} can never be reached: the lists add up to at least ${lowest}`]);
  }
  return out;
}

/** Allow rules of first-match mode: consulted first, so written first, and with nothing to reply. */
function allowRuleProblems(rules: Rules): ScoringFinding[] {
  const out: ScoringFinding[] = [];
  let firstBlock: number | undefined;
  rules.connectionFilter.rules.forEach((r, i) => {
    const path: Path = ['connectionFilter', 'rules', i];
    if (!r.allow) {
      firstBlock ??= i;
      return;
    }
    if (firstBlock !== undefined) {
      out.push([[...path, 'allow'], `an allow rule must come before every block rule (rules[${firstBlock}] blocks): the first match decides, and an allowlist hit has to be able to skip them`]);
    }
    if (r.onError === 'tempfail') out.push([[...path, 'onError'], 'an allow rule cannot fail closed: a failed allowlist lookup only means the client is not allowlisted']);
    if (r.message !== undefined) out.push([[...path, 'message'], 'an allow rule refuses nothing, so it has no message']);
    // load.ts already checks the rule's match as for any rule; an allowlist's own trap is the error codes.
    if (r.match !== 'any' && 'codes' in r.match) {
      r.match.codes.forEach((c, j) => {
        if (isIPv4(c) && c.startsWith('127.') && !isListingCode(c)) out.push([[...path, 'match', 'codes', j], codeProblem(c) ?? '']);
      });
    }
  });
  return out;
}

/** Every problem of the scoring mode and of allow rules, as (path, reason). */
export function dnsblScoringProblems(rules: Rules): ScoringFinding[] {
  return [...scoringProblems(rules), ...allowRuleProblems(rules)];
}
