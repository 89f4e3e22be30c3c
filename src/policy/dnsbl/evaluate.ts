import type { DnsblRuleConfig } from '../../config/schema.js';
import type { DnsblAnswer, ZoneHealth } from '../interfaces.js';
import { verdict, type TraceEntry, type Verdict } from '../verdict.js';
import { describeMatch, matchesRule } from './answer.js';
import { formatDnsblMessage } from './message.js';

/** What the DNSBL rules concluded for one session: the deciding verdict, and report-only matches. */
export interface DnsblOutcome {
  /** A reject (550 5.7.1) or, for a fail-closed rule whose lookup failed, a tempfail (451 4.7.1). */
  decisive?: Verdict;
  /** Report-only rules that matched: counted and logged, never enforced. */
  reportOnly: Verdict[];
  trace: TraceEntry[];
}

/**
 * Step 9: rules in their configured order, the first enforced match decides. A report-only match
 * is recorded and the walk goes on, so adding a trial list never disables the enforced ones.
 */
export async function evaluateDnsbl(
  rules: DnsblRuleConfig[],
  answers: Map<string, Promise<DnsblAnswer>>,
  health: ZoneHealth,
  ip: string,
): Promise<DnsblOutcome> {
  const trace: TraceEntry[] = [];
  const reportOnly: Verdict[] = [];
  const check = 'DNSBL rules';
  for (const rule of rules) {
    const pending = answers.get(rule.zone);
    if (!pending) continue;
    const answer = await pending;
    const where = `${answer.queryName}${answer.cached ? ' (cached)' : ''}`;
    if (answer.status === 'error' || answer.status === 'timeout') {
      const why = `${answer.status}${answer.detail ? `: ${answer.detail}` : ''}`;
      // An unhealthy zone's rule holds nothing back, not even by failing closed (every lookup fails then).
      if (rule.onError === 'tempfail' && !rule.reportOnly && health.isHealthy(rule.zone)) {
        trace.push({ step: 9, check, outcome: `${rule.name}: lookup ${why} (${where}); rule fails closed`, rule: rule.name });
        return {
          decisive: verdict('tempfail', 451, '4.7.1', `Block list lookup failed (${rule.name}), try again later`, 9, check, rule.name),
          reportOnly,
          trace,
        };
      }
      const unhealthy = health.isHealthy(rule.zone) ? '' : `, and zone ${rule.zone} is unhealthy: not enforced`;
      trace.push({ step: 9, check, outcome: `${rule.name}: lookup ${why} (${where}); not a listing${unhealthy}`, rule: rule.name });
      continue;
    }
    const errors = answer.errorCodes.length ? `; ignored error codes ${answer.errorCodes.join(', ')}` : '';
    if (answer.status === 'not-listed') {
      trace.push({ step: 9, check, outcome: `${rule.name}: not listed (${where})${errors}`, rule: rule.name });
      continue;
    }
    const code = matchesRule(answer.codes, rule.match);
    if (code === undefined) {
      trace.push({
        step: 9,
        check,
        outcome: `${rule.name}: listed ${answer.codes.join(', ')} (${where}) but no code matches ${describeMatch(rule.match)}${errors}`,
        rule: rule.name,
      });
      continue;
    }
    if (!health.isHealthy(rule.zone)) {
      trace.push({ step: 9, check, outcome: `${rule.name}: ${code} matches, but zone ${rule.zone} is unhealthy: not enforced`, rule: rule.name });
      continue;
    }
    const text = formatDnsblMessage(rule.message, {
      ip,
      ruleName: rule.name,
      provider: rule.provider ?? rule.zone,
      txt: answer.txt,
    });
    const v = verdict('reject', 550, '5.7.1', text, 9, check, rule.name);
    if (rule.reportOnly) {
      trace.push({ step: 9, check, outcome: `${rule.name}: ${code} matches ${describeMatch(rule.match)} (${where}); report only, not enforced`, rule: rule.name });
      reportOnly.push({ ...v, reportOnly: true });
      continue;
    }
    trace.push({ step: 9, check, outcome: `${rule.name}: ${code} matches ${describeMatch(rule.match)} (${where})`, rule: rule.name });
    return { decisive: v, reportOnly, trace };
  }
  if (rules.length === 0) trace.push({ step: 9, check, outcome: 'no DNSBL rules configured' });
  return { reportOnly, trace };
}
