/** Counting a process tree's fsync calls with `strace -f -c`, for the tests and the benchmark. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** The command line that runs `command` under `strace -f -c`, its summary of fsync and fdatasync calls written to `summary`. */
export function underStrace(command: string, args: string[], summary: string): [string, string[]] {
  return ['strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync', '-o', summary, command, ...args]];
}

/** The process strace started (its first child): signal that one, strace itself only detaches. */
export async function tracee(stracePid: number): Promise<number | undefined> {
  const children = await readFile(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').catch(() => '');
  const pid = Number(children.trim().split(' ')[0]);
  return pid > 0 ? pid : undefined;
}

/** fsync + fdatasync calls in the summary strace writes once every traced process has exited (waits for it, bounded). */
export async function syncCalls(summary: string, timeoutMs = 10_000): Promise<number> {
  for (const deadline = Date.now() + timeoutMs; !existsSync(summary) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
  const text = await readFile(summary, 'utf8');
  let n = 0;
  for (const m of text.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$/gm)) n += Number(m[1]);
  return n;
}
