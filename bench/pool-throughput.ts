/**
 * The back-end session pool's effect: smtp-source through the edge to smtp-sink (100 sessions, 1 KiB),
 * with the pool on (the default) and off (`backend.pool.maxIdle: 0`, one back-end connection per
 * transaction as before), interleaved so both see the same machine load. Three modes: a new client
 * connection per message, a client that reuses its connection (`smtp-source -d`), and one session
 * sending one message after another (latency per message). CPU is the edge process's own (user +
 * system, from /proc), per message. Run alone: `node dist/bench/pool-throughput.js`; `npm run bench` runs it as (h).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startSmtpSink, startServe, writeRules, smtpSource, tempDir, type EdgeProcess } from '../test/interop/peers.js';

const ROOT = process.cwd();
const SESSIONS = 100;
const MESSAGE_BYTES = 1024;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export type PoolMode = 'newConnection' | 'reusedConnection' | 'serial';

export interface PoolSample {
  msgPerSecond: number;
  cpuMsPerMessage: number;
  msPerMessage: number;
}

export interface PoolThroughputBench {
  runs: number;
  messages: Record<PoolMode, number>;
  /** Medians per mode, pool on and pool off. */
  pooled: Record<PoolMode, PoolSample>;
  unpooled: Record<PoolMode, PoolSample>;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function cpuTicks(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rules(backendPort: number, workDir: string, pool: Record<string, number> | undefined): Record<string, unknown> {
  return {
    hostname: 'edge.bench.test',
    acceptedDomains: ['example.test'],
    listeners: [
      {
        name: 'bench',
        listen: '127.0.0.1:0',
        limits: { maxMessagesPerConnection: 1_000_000, maxSessionSize: 4 * 1024 * 1024 * 1024, maxConnections: 1000, maxConnectionsPerClient: 1000 },
      },
    ],
    backend: { url: `smtp://127.0.0.1:${backendPort}`, timeoutMs: 5000, ...(pool ? { pool } : {}) },
    badmail: path.join(workDir, 'badmail'),
    log: { level: 'warn' },
  };
}

const ARGS: Record<PoolMode, (messages: number) => string[]> = {
  newConnection: (m) => ['-s', String(SESSIONS), '-m', String(m)],
  reusedConnection: (m) => ['-d', '-s', String(SESSIONS), '-m', String(m)],
  serial: (m) => ['-d', '-s', '1', '-m', String(m)],
};

async function sample(edge: EdgeProcess, mode: PoolMode, messages: number): Promise<PoolSample> {
  const pid = edge.child.pid as number;
  const args = [...ARGS[mode](messages), '-l', String(MESSAGE_BYTES), '-M', 'bench.test', '-f', 'load@bench.test', '-t', 'user@example.test'];
  const ticks = await cpuTicks(pid);
  const started = performance.now();
  await smtpSource(edge.port, args, 600_000);
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = ((await cpuTicks(pid)) - ticks) * (1000 / TICKS_PER_SECOND);
  return { msgPerSecond: messages / seconds, cpuMsPerMessage: cpuMs / messages, msPerMessage: (seconds * 1000) / messages };
}

function medians(samples: PoolSample[]): PoolSample {
  return {
    msgPerSecond: round(median(samples.map((s) => s.msgPerSecond)), 0),
    cpuMsPerMessage: round(median(samples.map((s) => s.cpuMsPerMessage)), 3),
    msPerMessage: round(median(samples.map((s) => s.msPerMessage)), 3),
  };
}

/**
 * Pool on and off against one smtp-sink; `poolOff` is the rule set's `backend.pool` for the run
 * without pooling (undefined: run the same rules twice, for a code base that has no pool key).
 */
export async function run(
  options: { runs?: number; messages?: Partial<Record<PoolMode, number>>; poolOff?: Record<string, number> | undefined } = {},
): Promise<PoolThroughputBench> {
  const runs = options.runs ?? 3;
  const messages: Record<PoolMode, number> = { newConnection: 4000, reusedConnection: 10000, serial: 500, ...options.messages };
  const poolOff = 'poolOff' in options ? options.poolOff : { maxIdle: 0 };
  const workDir = await tempDir('portcullis-bench-pool-');
  const sink = await startSmtpSink({ dump: false });
  const edges: Record<'pooled' | 'unpooled', EdgeProcess | undefined> = { pooled: undefined, unpooled: undefined };
  try {
    edges.pooled = await startServe(await writeRules(workDir, rules(sink.port, workDir, undefined), 'pooled.yaml'), { compiled: true, root: ROOT });
    edges.unpooled = await startServe(await writeRules(workDir, rules(sink.port, workDir, poolOff), 'unpooled.yaml'), { compiled: true, root: ROOT });
    const got = { pooled: {} as Record<PoolMode, PoolSample[]>, unpooled: {} as Record<PoolMode, PoolSample[]> };
    for (const mode of Object.keys(ARGS) as PoolMode[]) {
      got.pooled[mode] = [];
      got.unpooled[mode] = [];
      // A short warm-up each, so that JIT and the first connections do not land in a sample.
      for (const which of ['pooled', 'unpooled'] as const) await sample(edges[which] as EdgeProcess, mode, Math.min(200, messages[mode]));
      for (let i = 0; i < runs; i++) {
        for (const which of ['pooled', 'unpooled'] as const) got[which][mode].push(await sample(edges[which] as EdgeProcess, mode, messages[mode]));
      }
    }
    const by = (which: 'pooled' | 'unpooled'): Record<PoolMode, PoolSample> =>
      Object.fromEntries((Object.keys(ARGS) as PoolMode[]).map((m) => [m, medians(got[which][m])])) as Record<PoolMode, PoolSample>;
    return { runs, messages, pooled: by('pooled'), unpooled: by('unpooled') };
  } finally {
    await edges.pooled?.stop();
    await edges.unpooled?.stop();
    await sink.stop();
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

/** The table rows of a result. */
export function poolTable(r: PoolThroughputBench): string {
  const rows = (Object.keys(ARGS) as PoolMode[]).map((m) => {
    const p = r.pooled[m];
    const u = r.unpooled[m];
    return m === 'serial'
      ? `  ${m.padEnd(18)} pooled ${p.msPerMessage} ms/msg (${p.cpuMsPerMessage} CPU ms)   unpooled ${u.msPerMessage} ms/msg (${u.cpuMsPerMessage} CPU ms)`
      : `  ${m.padEnd(18)} pooled ${p.msgPerSecond} msg/s (${p.cpuMsPerMessage} CPU ms/msg)   unpooled ${u.msgPerSecond} msg/s (${u.cpuMsPerMessage} CPU ms/msg)`;
  });
  return `back-end pool, ${SESSIONS} sessions x ${MESSAGE_BYTES} B to smtp-sink (median of ${r.runs}):\n${rows.join('\n')}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const baseline = process.argv.includes('--no-pool-key');
  run(baseline ? { poolOff: undefined } : {})
    .then((r) => process.stdout.write(`${poolTable(r)}\n${JSON.stringify(r)}\n`))
    .catch((err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exitCode = 1;
    });
}
