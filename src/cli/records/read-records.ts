/**
 * Reads a record log and its rotated files, oldest first, one line at a time (a log of any size
 * fits). A corrupt line is skipped and counted; a record from a newer Portcullis stops the read with
 * a message saying so, since its fields may mean what this version cannot know.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { parseRecordLine, RECORD_FORMAT, type DecisionRecord } from '../../policy/decision-record.js';

export class RecordsError extends Error {}

/** The log's files, rotated ones (named `<path>.<time>-<n>`) in order, then the current one. */
export async function recordFiles(file: string): Promise<string[]> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new RecordsError(`cannot read the record log ${file}: ${(err as Error).message}`);
  }
  const rotated = names.filter((n) => n.startsWith(`${base}.`) && !n.endsWith('.salt')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const files = rotated.map((n) => path.join(dir, n));
  if (names.includes(base)) files.push(file);
  if (files.length === 0) throw new RecordsError(`no record log at ${file}`);
  return files;
}

export interface ReadStats {
  files: number;
  lines: number;
  /** Lines skipped because they were no record (truncated, garbled, not JSON). */
  corrupt: number;
}

/** Every record of the log at `file`, oldest first; `stats` is filled in as it goes. */
export async function* readRecords(file: string, stats: ReadStats = { files: 0, lines: 0, corrupt: 0 }): AsyncGenerator<DecisionRecord> {
  for (const f of await recordFiles(file)) {
    stats.files += 1;
    const lines = readline.createInterface({ input: createReadStream(f, { encoding: 'utf8' }), crlfDelay: Infinity });
    let n = 0;
    for await (const line of lines) {
      n += 1;
      if (line.trim() === '') continue;
      stats.lines += 1;
      const parsed = parseRecordLine(line);
      if (parsed.kind === 'record') yield parsed.record;
      else if (parsed.kind === 'corrupt') stats.corrupt += 1;
      else {
        lines.close();
        throw new RecordsError(
          `${f}:${n}: written by a newer Portcullis (record format ${parsed.format}; this version reads format ${RECORD_FORMAT}): read it with that version or newer`,
        );
      }
    }
  }
}

/** `--since`/`--until` as times, or a message saying what is wrong. */
export function timeWindow(since: string | undefined, until: string | undefined): { since: number; until: number } | string {
  const parse = (v: string | undefined, fallback: number): number => (v === undefined ? fallback : Date.parse(v));
  const w = { since: parse(since, -Infinity), until: parse(until, Infinity) };
  if (Number.isNaN(w.since)) return `--since: not a time: ${since ?? ''} (use ISO 8601, e.g. 2026-12-01T00:00:00Z)`;
  if (Number.isNaN(w.until)) return `--until: not a time: ${until ?? ''} (use ISO 8601, e.g. 2026-12-02T00:00:00Z)`;
  return w;
}
