/**
 * The framing cost of a message body: what relaying it costs the edge, per body kind, side by side.
 * Each kind (plain text, bare LF, bare CR, dot-stuffed `..` lines, one long line without a line end)
 * is relayed through a fresh `portcullis serve` to smtp-sink: MB/s of body and the edge's peak RSS
 * growth, medians of a few runs. Then 50 clients at once each send 1 MiB of bare LF: the edge's peak
 * RSS while they do and its RSS once they are done. Runnable alone: `node dist/bench/framing-cost.js`.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import fs from 'node:fs/promises';
import { startServe, startSmtpSink, tempDir, writeRules, pause, type EdgeProcess } from '../test/interop/peers.js';
import { cpuSeconds, MIB, resetPeak, sendBulk, statusKiB } from '../test/support/bulk-message.js';

const BODY_MIB = Number(process.env.BENCH_FRAMING_MB ?? 20);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONCURRENT_CLIENTS = 50;

export const BODY_KINDS: { name: string; unit: string }[] = [
  { name: 'plain text', unit: `${'x'.repeat(76)}\r\n` },
  { name: 'bare LF', unit: '\n' },
  { name: 'bare CR', unit: '\r' },
  { name: 'dot lines (..)', unit: '..\r\n' },
  { name: 'one long line', unit: 'x' },
];

export interface KindCost {
  kind: string;
  runs: number;
  mbPerSecond: number;
  /** The edge's CPU time (user + system) per MiB of body. */
  cpuMsPerMiB: number;
  peakRssGrowthMiB: number;
}

export interface FramingCost {
  bodyMiB: number;
  kinds: KindCost[];
  concurrentBareLf: { clients: number; eachMiB: number; baselineRssMiB: number; peakRssMiB: number; rssAfterMiB: number; seconds: number };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function withEdge<T>(root: string, workDir: string, name: string, use: (edge: EdgeProcess) => Promise<T>): Promise<T> {
  const sink = await startSmtpSink({ dump: false });
  const config = await writeRules(
    workDir,
    {
      hostname: 'edge.bench.test',
      acceptedDomains: ['example.com'],
      listeners: [
        {
          name: 'bench',
          listen: '127.0.0.1:0',
          limits: { maxMessageSize: 4 * BODY_MIB * MIB, maxSessionSize: 64 * BODY_MIB * MIB, maxConnections: 1000, maxConnectionsPerClient: 1000 },
        },
      ],
      dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
      backend: { url: `smtp://127.0.0.1:${sink.port}`, timeoutMs: 30_000 },
      badmail: path.join(workDir, 'badmail'),
      log: { level: 'warn' },
    },
    `${name}.yaml`,
  );
  const edge = await startServe(config, { compiled: true, root });
  try {
    // Warm-up, so JIT and first allocations do not land in the first sample.
    await sendBulk(edge.port, { bytes: 256 * 1024, unit: Buffer.from('warm up\r\n') });
    return await use(edge);
  } finally {
    await edge.stop();
    await sink.stop();
  }
}

async function kindCost(root: string, workDir: string, kind: { name: string; unit: string }): Promise<KindCost> {
  return withEdge(root, workDir, 'framing', async (edge) => {
    const pid = edge.child.pid as number;
    const rates: number[] = [];
    const growths: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await resetPeak(pid);
      const baseline = await statusKiB(pid, 'VmRSS');
      const cpuBefore = await cpuSeconds(pid);
      const started = performance.now();
      await sendBulk(edge.port, { bytes: BODY_MIB * MIB, unit: Buffer.from(kind.unit, 'latin1') }, 600_000);
      rates.push((BODY_MIB * MIB) / 1e6 / ((performance.now() - started) / 1000));
      cpu.push((((await cpuSeconds(pid)) - cpuBefore) * 1000) / BODY_MIB);
      growths.push(((await statusKiB(pid, 'VmHWM')) - baseline) / 1024);
    }
    return { kind: kind.name, runs: RUNS, mbPerSecond: round(median(rates)), cpuMsPerMiB: round(median(cpu)), peakRssGrowthMiB: round(median(growths)) };
  });
}

async function concurrentBareLf(root: string, workDir: string): Promise<FramingCost['concurrentBareLf']> {
  return withEdge(root, workDir, 'concurrent', async (edge) => {
    const pid = edge.child.pid as number;
    await resetPeak(pid);
    const baseline = await statusKiB(pid, 'VmRSS');
    const started = performance.now();
    await Promise.all(Array.from({ length: CONCURRENT_CLIENTS }, () => sendBulk(edge.port, { bytes: MIB, unit: Buffer.from('\n') }, 600_000)));
    const seconds = (performance.now() - started) / 1000;
    const peak = await statusKiB(pid, 'VmHWM');
    await pause(500);
    const after = await statusKiB(pid, 'VmRSS');
    return {
      clients: CONCURRENT_CLIENTS,
      eachMiB: 1,
      baselineRssMiB: round(baseline / 1024),
      peakRssMiB: round(peak / 1024),
      rssAfterMiB: round(after / 1024),
      seconds: round(seconds, 2),
    };
  });
}

/** Runs every case against the build in `root` (its dist/). */
export async function run(root = process.cwd()): Promise<FramingCost> {
  const workDir = await tempDir('portcullis-framing-');
  try {
    const kinds: KindCost[] = [];
    for (const kind of BODY_KINDS) kinds.push(await kindCost(root, workDir, kind));
    return { bodyMiB: BODY_MIB, kinds, concurrentBareLf: await concurrentBareLf(root, workDir) };
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

/** The side-by-side table. */
export function framingTable(r: FramingCost): string {
  const rows = r.kinds.map(
    (k) => `${k.kind.padEnd(16)} ${String(k.mbPerSecond).padStart(8)} MB/s ${String(k.cpuMsPerMiB).padStart(8)} ms/MiB ${String(k.peakRssGrowthMiB).padStart(8)} MiB`,
  );
  const c = r.concurrentBareLf;
  return [
    `body kind (${r.bodyMiB} MiB, median of ${r.kinds[0]?.runs ?? 0}): throughput, edge CPU per MiB, edge peak RSS growth`,
    ...rows,
    `${c.clients} clients x ${c.eachMiB} MiB of bare LF at once: RSS ${c.baselineRssMiB} -> peak ${c.peakRssMiB} MiB, ${c.rssAfterMiB} MiB after (${c.seconds} s)`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${framingTable(await run(process.argv[2] ?? process.cwd()))}\n`);
}
