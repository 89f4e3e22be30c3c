import { loadRules } from '../config/load.js';
import type { Rules } from '../config/schema.js';
import { DirectoryModel } from '../directory/directory-model.js';
import { openDnsbl, type DnsblRuntime } from '../dns/dnsbl-runtime.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import { systemClock } from '../runtime/clock.js';
import { configOption, parseCommandArgs } from './args.js';
import type { Command } from './commands.js';
import { RecordsError, timeWindow } from './records/read-records.js';
import { recordsOption, recordsPath } from './records/record-options.js';
import { renderReplay } from './records/replay-diff.js';
import { replayLog } from './records/replay-log.js';

const usage =
  'usage: portcullis replay --rules CANDIDATE.yaml [--records PATH] [--since ISO] [--until ISO] [--json] [--live-dns] [--config FILE]\n' +
  '  Re-runs the engine with CANDIDATE on every recorded session, with the recorded DNS answers\n' +
  '  (--live-dns: asks DNS again), and prints the recipients and sessions whose outcome changes,\n' +
  '  grouped by the step and rule that decide the difference. --records defaults to records.path of --config.\n';

/** `portcullis replay`: last week's traffic against tomorrow's rules, through the one engine. */
export const replayCommand: Command = {
  summary: 'replay recorded sessions against a candidate rule set; show what changes',
  async run(args) {
    const parsed = parseCommandArgs('replay', usage, args, {
      ...configOption,
      ...recordsOption,
      rules: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      json: { type: 'boolean', default: false },
      'live-dns': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    });
    if (!parsed) return 2;
    const { values } = parsed;
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
    if (!values.rules) {
      process.stderr.write(`portcullis replay: --rules CANDIDATE.yaml is required\n${usage}`);
      return 2;
    }
    const window = timeWindow(values.since, values.until);
    if (typeof window === 'string') {
      process.stderr.write(`portcullis replay: ${window}\n${usage}`);
      return 2;
    }
    let candidate: Rules;
    let path: string | undefined;
    try {
      candidate = await loadRules(values.rules);
      path = recordsPath(values.records, values.records ? undefined : await loadRules(values.config));
    } catch (err) {
      process.stderr.write(`portcullis replay: ${(err as Error).message}\n`);
      return 1;
    }
    if (!path) {
      process.stderr.write(`portcullis replay: no record log: give --records PATH, or set records.path in ${values.config}\n`);
      return 2;
    }
    let dns: DnsblRuntime | undefined;
    try {
      dns = values['live-dns'] ? await openDnsbl(candidate, { clock: systemClock }) : undefined;
      const directory = DirectoryModel.fromRules(candidate);
      const engine = new PolicyEngine(candidate, dns ? { dnsbl: dns.lookup, health: dns.health, directory } : { ...unusedPorts(), directory });
      const report = await replayLog(path, engine, { ...window, liveDns: dns !== undefined });
      process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReplay(report, values.rules));
      return 0;
    } catch (err) {
      if (err instanceof RecordsError) {
        process.stderr.write(`portcullis replay: ${err.message}\n`);
        return 1;
      }
      throw err;
    } finally {
      dns?.close();
    }
  },
};

/** Ports a replay from records never calls: every session gets the record's own (replaySession). */
function unusedPorts(): Pick<PolicyEngine['deps'], 'dnsbl' | 'health'> {
  const never = (): never => {
    throw new Error('replay asked the network without --live-dns');
  };
  return { dnsbl: { lookup: never }, health: { isEnforced: never } };
}
