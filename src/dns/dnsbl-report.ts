import type { DnsblRuleConfig, Rules } from '../config/schema.js';
import { describeMatch, matchesRule } from '../policy/dnsbl/answer.js';
import { dnsblZones } from '../policy/compiled-rules.js';
import { evaluateDnsbl } from '../policy/dnsbl/evaluate.js';
import { normalizeIp } from '../net/ip.js';
import { formatDnsblMessage } from '../policy/dnsbl/message.js';
import type { DnsblAnswer } from '../policy/interfaces.js';
import { replyLine } from '../policy/verdict.js';
import { DnsClient } from './client.js';
import { CachedDnsblLookup } from './dnsbl-lookup.js';
import { ZoneHealthMonitor, type ZoneStatus } from './zone-health.js';

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
  /** A match that rejects: not report-only, and the zone not found unhealthy. */
  enforced: boolean;
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
  /** Step 9 for this address, as the engine decides it: the first enforced match or failure. */
  decision: { action: 'accept' | 'reject' | 'tempfail'; rule?: string; reply?: string };
}

function healthOf(status: Record<string, ZoneStatus>, zone: string): ZoneStatus {
  return status[zone.replace(/\.$/, '').toLowerCase()] ?? { healthy: undefined, reason: 'not checked' };
}

/** Run the RFC 5782 checks of every zone the rules use, once. */
export async function checkZones(rules: Rules): Promise<Record<string, ZoneStatus>> {
  const monitor = new ZoneHealthMonitor({
    client: new DnsClient({ servers: rules.dns.servers, timeoutMs: rules.dns.timeoutMs }),
    zones: dnsblZones(rules),
    intervalSec: 0,
  });
  await monitor.start();
  return monitor.status();
}

function explain(rule: DnsblRuleConfig, a: DnsblAnswer, matched: string | undefined, health: ZoneStatus): string {
  const mode = describeMatch(rule.match);
  if (a.status === 'timeout' || a.status === 'error') {
    // The same conditions as evaluateDnsbl: only an enforced rule on a healthy zone fails closed.
    const consequence =
      rule.onError !== 'tempfail'
        ? 'not a listing (onError: accept)'
        : rule.reportOnly
          ? 'not a listing (report only: never fails closed)'
          : health.healthy === false
            ? `not a listing: zone unhealthy (${health.reason}), so the rule does not fail closed`
            : 'the rule fails closed (onError: tempfail): 451 4.7.1';
    return `lookup ${a.status}: ${a.detail ?? 'no detail'}; ${consequence}`;
  }
  if (a.status === 'not-listed') return 'not listed';
  if (matched === undefined) return `listed ${a.codes.join(', ')}, but no code satisfies ${mode}`;
  const how = mode === 'any' ? 'any listing code matches' : `${matched} satisfies ${mode}`;
  const enforced = health.healthy === false ? `; NOT enforced: zone unhealthy (${health.reason})` : '';
  const trial = rule.reportOnly ? '; report only: counted and logged, rejects nothing' : '';
  return `${how}${enforced}${trial}`;
}

/** Ask every rule's zone about `ip`, check the zones' health, and judge each rule. */
export async function reportAddress(rules: Rules, ip: string): Promise<DnsblAddressReport> {
  const clientIp = normalizeIp(ip);
  const lookup = CachedDnsblLookup.fromConfig(rules.dns);
  const dnsblRules = rules.connectionFilter.rules;
  const answers = new Map<string, Promise<DnsblAnswer>>();
  for (const zone of dnsblZones(rules)) answers.set(zone, lookup.lookup(zone, clientIp));
  const status = await checkZones(rules);
  const health = { isHealthy: (zone: string) => healthOf(status, zone).healthy !== false };
  const reports: DnsblRuleReport[] = [];
  for (const rule of dnsblRules) {
    const a = await (answers.get(rule.zone) as Promise<DnsblAnswer>);
    const matched = a.status === 'listed' ? matchesRule(a.codes, rule.match) : undefined;
    const zoneHealth = healthOf(status, rule.zone);
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
      matches: matched !== undefined,
      enforced: matched !== undefined && !rule.reportOnly && zoneHealth.healthy !== false,
      why: explain(rule, a, matched, zoneHealth),
      reportOnly: rule.reportOnly,
      onError: rule.onError,
      zoneHealth,
    };
    if (a.txt !== undefined) report.txt = a.txt;
    if (a.detail !== undefined) report.detail = a.detail;
    if (matched !== undefined) {
      report.matchedCode = matched;
      const text = formatDnsblMessage(rule.message, { ip: clientIp, ruleName: rule.name, provider, ...(a.txt !== undefined ? { txt: a.txt } : {}) });
      report.reply = replyLine({ code: 550, enhanced: '5.7.1', text });
    }
    reports.push(report);
  }
  const outcome = await evaluateDnsbl(dnsblRules, answers, health, clientIp);
  const d = outcome.decisive;
  const decision: DnsblAddressReport['decision'] =
    d && (d.action === 'reject' || d.action === 'tempfail')
      ? { action: d.action, ...(d.rule !== undefined ? { rule: d.rule } : {}), reply: replyLine(d) }
      : { action: 'accept' };
  return { ip: clientIp, servers: rules.dns.servers, rules: reports, decision };
}
