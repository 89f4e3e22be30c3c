import { isIP } from 'node:net';
import type { Rules } from '../config/schema.js';
import { loadRules } from '../config/load.js';
import { checkZones, reportAddress, type DnsblAddressReport, type DnsblScoreReport } from './dnsbl/report.js';
import { signed } from '../policy/dnsbl/score.js';
import { zoneStateWord, type ZoneStatus } from '../dns/zone-health.js';
import { STEPS } from '../policy/steps.js';
import { configOption, parseCommandArgs } from './args.js';
import { dnsblStats } from './dnsbl/stats-command.js';
import { recordsOption } from './records/record-options.js';
import type { Command } from './commands.js';

const usage =
  'usage: portcullis dnsbl IP [--config FILE] [--json]\n       portcullis dnsbl --health [--config FILE] [--json]\n' +
  '       portcullis dnsbl --stats [--records PATH] [--config FILE] [--json]\n';

function renderHealth(zones: Record<string, ZoneStatus>): string {
  const names = Object.keys(zones);
  if (names.length === 0) return 'no DNSBL rules configured\n';
  const width = Math.max(...names.map((z) => z.length));
  return `${names.map((z) => `${z.padEnd(width)}  ${zoneStateWord((zones[z] as ZoneStatus).state).padEnd(11)}  ${(zones[z] as ZoneStatus).reason}`).join('\n')}\n`;
}

/** Scoring mode: each list's answer and points, then the total against the thresholds. */
function renderScore(s: DnsblScoreReport): string[] {
  const out: string[] = [];
  for (const x of s.lists) {
    out.push(
      '',
      `list "${x.list}"  zone ${x.zone}`,
      `  query        ${x.queryName} A`,
      `  answer       ${x.status}${x.codes.length ? ` ${x.codes.join(', ')}` : ''}`,
      `  error codes  ${x.errorCodes.length ? x.errorCodes.join(', ') : 'none'}`,
      `  TXT          ${x.txt ?? '(none)'}`,
      `  weighs       ${x.weighs}`,
      `  contributes  ${signed(x.points)} — ${x.why}`,
      `  zone health  ${zoneStateWord(x.zoneHealth.state)} (${x.zoneHealth.reason})`,
    );
  }
  const allow = s.allowThreshold !== undefined ? `, allowThreshold ${s.allowThreshold}` : '';
  out.push('', `score ${signed(s.total)} = ${s.lists.map((x) => `${signed(x.points)} ${x.list}`).join(', ')} (threshold ${s.threshold}${allow})`);
  return out;
}

function renderAddress(r: DnsblAddressReport): string {
  const out = r.score
    ? [`${r.ip}: DNSBL scoring, ${r.score.lists.length} list(s), asked through ${r.servers.join(', ')}`]
    : [`${r.ip}: ${r.rules.length} DNSBL rule(s), asked through ${r.servers.join(', ')}`];
  if (r.rules.length === 0 && !r.score) out.push('no DNSBL rules configured');
  if (r.score) out.push(...renderScore(r.score));
  for (const x of r.rules) {
    out.push(
      '',
      `${x.allow ? 'allow rule' : 'rule'} "${x.rule}"  zone ${x.zone}${x.provider !== x.zone ? `  provider ${x.provider}` : ''}`,
      `  query        ${x.queryName} A`,
      `  answer       ${x.status}${x.codes.length ? ` ${x.codes.join(', ')}` : ''}${x.detail ? ` (${x.detail})` : ''}`,
      `  error codes  ${x.errorCodes.length ? x.errorCodes.join(', ') : 'none'}`,
      `  TXT          ${x.txt ?? '(none)'}`,
      `  match        ${x.match}: ${x.matches ? 'MATCHES' : 'no match'} — ${x.why}`,
      `  report only  ${x.reportOnly ? 'yes' : 'no'}    on error: ${x.onError}`,
      `  zone health  ${zoneStateWord(x.zoneHealth.state)} (${x.zoneHealth.reason})`,
    );
    if (x.reply) out.push(`  reply        ${x.reply}${x.enforced ? '' : ' (would give; not enforced)'}`);
  }
  const d = r.decision;
  const { dnsbl, exceptions, directory } = STEPS;
  const none = r.score ? 'score below threshold' : 'no enforced rule matches';
  out.push(
    '',
    d.action === 'accept'
      ? `step ${dnsbl.step} decision: ${none}; RCPT TO goes on to steps ${exceptions.step}-${directory.step}`
      : d.action === 'allowlisted'
        ? `step ${dnsbl.step} decision: allowlisted${d.rule ? ` by "${d.rule}"` : ''}: the remaining connection checks are skipped; RCPT TO goes on to steps ${exceptions.step}-${directory.step}`
        : `step ${dnsbl.step} decision: ${d.action} by "${d.rule ?? ''}": ${d.reply ?? ''} (an exception recipient is still accepted)`,
  );
  return `${out.join('\n')}\n`;
}

/** `portcullis dnsbl`: ask every rule's zone about one address, or check the zones' health. */
export const dnsblCommand: Command = {
  summary: 'ask every DNSBL rule about an address (or --health: check the zones)',
  async run(args) {
    const parsed = parseCommandArgs(
      'dnsbl',
      usage,
      args,
      {
        ...configOption,
        health: { type: 'boolean', default: false },
        stats: { type: 'boolean', default: false },
        ...recordsOption,
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      true,
    );
    if (!parsed) return 2;
    const { values, positionals } = parsed;
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
    const ip = positionals[0];
    if (values.stats && (ip !== undefined || values.health)) {
      process.stderr.write(`portcullis dnsbl: --stats takes no IP address and no --health\n${usage}`);
      return 2;
    }
    if (values.stats) return dnsblStats(values.config, values.records, values.json);
    if (positionals.length > 1 || (values.health ? ip !== undefined : ip === undefined)) {
      process.stderr.write(`portcullis dnsbl: give one IP address, or --health alone, or --stats\n${usage}`);
      return 2;
    }
    if (ip !== undefined && isIP(ip) === 0) {
      process.stderr.write(`portcullis dnsbl: not an IP address: ${ip}\n${usage}`);
      return 2;
    }
    let rules: Rules;
    try {
      rules = await loadRules(values.config);
    } catch (err) {
      process.stderr.write(`portcullis dnsbl: ${(err as Error).message}\n`);
      return 1;
    }
    if (ip === undefined) {
      const zones = await checkZones(rules);
      process.stdout.write(values.json ? `${JSON.stringify({ zones }, null, 2)}\n` : renderHealth(zones));
      return 0;
    }
    const report = await reportAddress(rules, ip);
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderAddress(report));
    return 0;
  },
};
