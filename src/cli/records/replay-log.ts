/** Every record of a log (within a time window) replayed through one engine, into one report. */
import type { PolicyEngine } from '../../policy/policy-engine.js';
import { readRecords, type ReadStats } from './read-records.js';
import { ReplayDiff, type ReplayReport } from './replay-diff.js';
import { replaySession } from './replay-session.js';

export interface ReplayOptions {
  since?: number;
  until?: number;
  /** Ask the engine's own ports (live DNS) instead of the recorded answers. */
  liveDns?: boolean;
}

export async function replayLog(path: string, engine: PolicyEngine, options: ReplayOptions = {}): Promise<ReplayReport> {
  const since = options.since ?? -Infinity;
  const until = options.until ?? Infinity;
  const diff = new ReplayDiff();
  const stats: ReadStats = { files: 0, lines: 0, corrupt: 0 };
  for await (const record of readRecords(path, stats)) {
    const at = Date.parse(record.start);
    if (at < since || at >= until) continue;
    if (!engine.compiled.listeners.has(record.listener)) {
      diff.skip(record);
      continue;
    }
    const replayed = await replaySession(engine, record, options.liveDns ? engine.deps : undefined);
    diff.add(record, replayed.verdicts, replayed.missing);
  }
  return diff.finish(stats.corrupt);
}
