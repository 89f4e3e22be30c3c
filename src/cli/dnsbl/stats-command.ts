/** `portcullis dnsbl --stats`: reads the records and prints each list's statistics (stats.ts). */
import { loadRules } from '../../config/load.js';
import type { Rules } from '../../config/schema.js';
import { readRecords, RecordsError, type ReadStats } from '../records/read-records.js';
import { recordsPath } from '../records/record-options.js';
import { DnsblStatsCollector, renderStats } from './stats.js';

export async function dnsblStats(config: string, records: string | undefined, json: boolean): Promise<number> {
  let rules: Rules;
  try {
    rules = await loadRules(config);
  } catch (err) {
    process.stderr.write(`portcullis dnsbl: ${(err as Error).message}\n`);
    return 1;
  }
  const path = recordsPath(records, rules);
  if (!path) {
    process.stderr.write(`portcullis dnsbl: no record log: give --records PATH, or set records.path in ${config}\n`);
    return 2;
  }
  const collector = new DnsblStatsCollector(rules);
  const stats: ReadStats = { files: 0, lines: 0, corrupt: 0 };
  try {
    for await (const record of readRecords(path, stats)) await collector.add(record);
  } catch (err) {
    if (!(err instanceof RecordsError)) throw err;
    process.stderr.write(`portcullis dnsbl: ${err.message}\n`);
    return 1;
  }
  const result = collector.finish(stats.corrupt);
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : renderStats(result));
  return 0;
}
