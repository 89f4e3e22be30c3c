import { loadRules } from '../config/load.js';
import { rulesHash } from '../config/rules-hash.js';
import type { Rules } from '../config/schema.js';
import type { DecisionRecord } from '../policy/decision-record.js';
import { configOption, parseCommandArgs } from './args.js';
import { renderText } from './check/render.js';
import type { Command } from './commands.js';
import { flipsOf, type Flip } from './records/flips.js';
import { readRecords, RecordsError, type ReadStats } from './records/read-records.js';
import { recordsOption, recordsPath } from './records/record-options.js';
import { recordTraces } from './records/record-trace.js';

const usage =
  'usage: portcullis explain ID [--records PATH] [--json] [--config FILE]\n' +
  '  Prints the whole trace of the session ID (the [ID] in its replies) from the decision records, as\n' +
  '  `check` prints it, and for each refusal the smallest change of the rule set in --config that\n' +
  '  would have let it through, each one verified by replaying the session. --records defaults to records.path.\n';

function renderFlips(flips: Flip[], record: DecisionRecord): string {
  if (flips.length === 0) return 'nothing was refused in this session\n';
  const out = ['what would have flipped each refusal (each change checked by replaying the session):'];
  for (const f of flips) {
    const e = record.events[f.event];
    const what = e?.kind === 'rcpt' ? `RCPT TO:<${e.address}>` : e?.kind === 'mail' ? `MAIL FROM:<${e.address}>` : e?.kind === 'data' ? 'DATA' : 'connect';
    out.push(`  ${what}: ${f.refusal}`);
    for (const c of f.changes) out.push(`    - ${c}`);
    if (f.changes.length === 0) out.push(`    (${f.note ?? 'no single change of the rule set flips it'})`);
  }
  return `${out.join('\n')}\n`;
}

/** `portcullis explain`: why a session was treated as it was, and what would have changed it. */
export const explainCommand: Command = {
  summary: 'explain a recorded session by its ID: its trace, and what would have flipped each refusal',
  async run(args) {
    const parsed = parseCommandArgs('explain', usage, args, { ...configOption, ...recordsOption, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } }, true);
    if (!parsed) return 2;
    const { values, positionals } = parsed;
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
    const id = positionals[0]?.replace(/^\[(.*)\]$/, '$1');
    if (id === undefined || positionals.length > 1) {
      process.stderr.write(`portcullis explain: give one session ID\n${usage}`);
      return 2;
    }
    let rules: Rules | undefined;
    let rulesProblem: string | undefined;
    try {
      rules = await loadRules(values.config);
    } catch (err) {
      rulesProblem = (err as Error).message;
    }
    const path = recordsPath(values.records, rules);
    if (!path) {
      process.stderr.write(`portcullis explain: no record log: give --records PATH, or set records.path in ${values.config}${rulesProblem ? ` (${rulesProblem})` : ''}\n`);
      return 2;
    }
    let found: DecisionRecord | undefined;
    const stats: ReadStats = { files: 0, lines: 0, corrupt: 0 };
    try {
      for await (const record of readRecords(path, stats)) if (record.id === id) found = record;
    } catch (err) {
      if (!(err instanceof RecordsError)) throw err;
      process.stderr.write(`portcullis explain: ${err.message}\n`);
      return 1;
    }
    if (!found) {
      process.stderr.write(`portcullis explain: no session ${id} in ${path} (${stats.lines} record(s) read${stats.corrupt ? `, ${stats.corrupt} corrupt line(s) skipped` : ''})\n`);
      return 1;
    }
    const flips = rules ? await flipsOf(found, rules) : [];
    const sameRules = rules !== undefined && rulesHash(rules) === found.rules;
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ record: found, sessions: recordTraces(found), flips, rulesChanged: !sameRules }, null, 2)}\n`);
      return 0;
    }
    const head = [`session ${found.id}: ${found.start} – ${found.end}, listener "${found.listener}", client ${found.client}${found.hashed ? ' (local parts hashed)' : ''}`];
    for (const d of found.dns) head.push(`DNS: ${d.zone} about ${d.ip}: ${d.answer.status}${d.answer.codes.length ? ` ${d.answer.codes.join(', ')}` : ''} (TTL ${d.answer.ttlSec ?? '?'} s, at ${new Date(d.at).toISOString()})`);
    process.stdout.write(`${head.join('\n')}\n\n`);
    for (const t of recordTraces(found)) process.stdout.write(renderText(t, []));
    process.stdout.write('\n');
    if (!rules) process.stdout.write(`(no changes proposed: ${values.config} could not be read: ${rulesProblem ?? ''})\n`);
    else {
      if (!sameRules) process.stdout.write(`note: the session ran under rule set ${found.rules}; ${values.config} is ${rulesHash(rules)}: changes are proposed against ${values.config}\n`);
      process.stdout.write(renderFlips(flips, found));
    }
    return 0;
  },
};
