/**
 * `npm run bench`: the edge's numbers, measured against real Postfix test tools on loopback.
 *  (a) messages/second through the edge to smtp-sink, beside smtp-source straight to smtp-sink
 *  (b) the edge's memory while it relays one 50 MB message, and one 200 MB message to show growth does not follow size
 *  (c) time to the client's 451 with the back end down (port closed) and black-holed
 *  (d) the DNSBL engineer's cached-verdict benchmark (bench/dnsbl-cache.ts)
 *  (e) messages/second the bundled transport engine accepts with fsync on (bench/engine-throughput.ts)
 *  (f) the framing cost per body kind, and 50 clients sending bare LF at once (bench/framing-cost.ts)
 *  (g) time the engine takes to deliver fresh mail past a long retry backlog (bench/queue-backlog.ts)
 *  (h) the engine beside a private Postfix on the same loads, and `npm start` beside the engine alone (bench/engine-postfix.ts)
 *  (i) the back-end session pool on and off: new and reused client connections, serial latency (bench/pool-throughput.ts)
 *  (j) what step 9's scoring mode adds to a session, cached and uncached (bench/dnsbl-score.ts)
 *  (k) what each limit adds per session, memory store and Redis, greylisting cached and not (bench/limits-cost.ts)
 *  (l) the cost per session of each protocol test at the door (bench/protocol-tests.ts)
 *  (m) SPF + DKIM + ARC + DMARC per message, DNS answers cached and not (bench/sender-auth.ts)
 *  (n) replay speed over a 100,000-session record log, and its bytes per session (bench/replay.ts)
 *  (o) what the peers benchmark's realistic rule set costs a policy session in CPU, beside no rules (bench/rules-cost.ts)
 * Prints a table and writes bench/results.json. Numbers, not assertions: nothing here fails on speed.
 * `npm run bench -- peers` (or BENCH=peers) runs bench/peers.ts instead: Portcullis beside Haraka and the wire.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { startSmtpSink, startServe, writeRules, smtpSource, tempDir, pause, type EdgeProcess } from '../test/interop/peers.js';
import { probeTransaction } from './smtp-probe.js';
import { run as dnsblCache } from './dnsbl-cache.js';
import { run as engineThroughput } from './engine-throughput.js';
import { framingTable, run as framingCost, type FramingCost } from './framing-cost.js';
import { run as queueBacklog } from './queue-backlog.js';
import { comparisonTable, run as enginePostfix, type EnginePostfixBench } from './engine-postfix.js';
import { poolTable, run as poolThroughput, type PoolThroughputBench } from './pool-throughput.js';
import { runPeers } from './peers-report.js';
import { run as dnsblScore } from './dnsbl-score.js';
import { limitsTable, run as limitsCost, type LimitsCostBench } from './limits-cost.js';
import { protocolTestsRows, run as protocolTests, type ProtocolTestsBench } from './protocol-tests.js';
import { run as senderAuth } from './sender-auth.js';
import { run as replayBench, type ReplayBench } from './replay.js';
import { run as rulesCost, type RulesCostBench } from './rules-cost.js';

const ROOT = process.cwd();
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 10);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const MESSAGE_BYTES = 2048;
/** Sizes of the big-message runs: 50 MB is the figure asked for; a bigger one shows whether growth follows size. */
const BIG_MESSAGE_MIB = (process.env.BENCH_BIG_MB ?? '50,200').split(',').map(Number);
const BIG_MESSAGE_BYTES = Math.max(...BIG_MESSAGE_MIB) * 1024 * 1024;
const BACKEND_TIMEOUT_MS = 5000;

/** The rule set the edge runs under in every scenario: no filters that could refuse the load. */
function benchRules(backendPort: number, workDir: string): Record<string, unknown> {
  return {
    hostname: 'edge.bench.test',
    acceptedDomains: ['example.test'],
    listeners: [
      {
        name: 'bench',
        listen: '127.0.0.1:0',
        limits: {
          maxMessageSize: BIG_MESSAGE_BYTES + 16 * 1024 * 1024,
          maxSessionSize: 4 * 1024 * 1024 * 1024,
          maxMessagesPerConnection: 100_000,
          maxConnections: 1000,
          maxConnectionsPerClient: 1000,
        },
      },
    ],
    backend: { url: `smtp://127.0.0.1:${backendPort}`, timeoutMs: BACKEND_TIMEOUT_MS },
    badmail: path.join(workDir, 'badmail'),
    log: { level: 'warn' },
  };
}

async function startEdge(backendPort: number, workDir: string, name: string): Promise<EdgeProcess> {
  const config = await writeRules(workDir, benchRules(backendPort, workDir), `${name}.yaml`);
  return startServe(config, { compiled: true, root: ROOT });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function timedSource(port: number, args: string[]): Promise<number> {
  const started = performance.now();
  await smtpSource(port, args, 600_000);
  return (performance.now() - started) / 1000;
}

/** (a) smtp-source to smtp-sink, straight and through the edge, alternating runs so both see the same machine load. */
async function throughput(workDir: string): Promise<Record<string, unknown>> {
  const sink = await startSmtpSink({ dump: false });
  const edge = await startEdge(sink.port, workDir, 'throughput');
  try {
    const args = ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', String(MESSAGE_BYTES), '-M', 'bench.test', '-f', 'load@bench.test', '-t', 'user@example.test'];
    // One small warm-up run each, so that JIT and connection set-up do not land in the first sample.
    await timedSource(sink.port, ['-s', '2', '-m', '50', '-l', '512', '-M', 'bench.test', '-f', 'w@bench.test', '-t', 'user@example.test']);
    await timedSource(edge.port, ['-s', '2', '-m', '50', '-l', '512', '-M', 'bench.test', '-f', 'w@bench.test', '-t', 'user@example.test']);
    const direct: number[] = [];
    const viaEdge: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      direct.push(MESSAGES / (await timedSource(sink.port, args)));
      viaEdge.push(MESSAGES / (await timedSource(edge.port, args)));
    }
    const d = median(direct);
    const e = median(viaEdge);
    return {
      sessions: SESSIONS,
      messages: MESSAGES,
      messageBytes: MESSAGE_BYTES,
      runs: RUNS,
      directPerSecond: direct.map((x) => round(x)),
      edgePerSecond: viaEdge.map((x) => round(x)),
      directMedian: round(d),
      edgeMedian: round(e),
      edgeToDirectRatio: round(e / d, 3),
    };
  } finally {
    await edge.stop();
    await sink.stop();
  }
}

async function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) : NaN;
}

/** (b) The edge's resident memory while one big message goes through it, on a fresh edge. */
async function bigMessage(workDir: string, bytes: number): Promise<Record<string, number>> {
  const sink = await startSmtpSink({ dump: false });
  const edge = await startEdge(sink.port, workDir, 'memory');
  const pid = edge.child.pid as number;
  try {
    await timedSource(edge.port, ['-m', '5', '-l', '2048', '-M', 'bench.test', '-f', 'w@bench.test', '-t', 'user@example.test']);
    await pause(200);
    const baseline = await rssKiB(pid, 'VmRSS');
    let peak = baseline;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssKiB(pid, 'VmRSS'));
        await pause(5);
      }
    })();
    const seconds = await timedSource(edge.port, ['-m', '1', '-l', String(bytes), '-M', 'bench.test', '-f', 'big@bench.test', '-t', 'user@example.test']);
    sampling = false;
    await sampler;
    const hwm = await rssKiB(pid, 'VmHWM');
    return {
      messageMiB: bytes / 1024 / 1024,
      seconds: round(seconds, 2),
      baselineRssMiB: round(baseline / 1024),
      peakRssMiB: round(peak / 1024),
      growthMiB: round((peak - baseline) / 1024),
      processHighWaterMiB: round(hwm / 1024),
    };
  } finally {
    await edge.stop();
    await sink.stop();
  }
}

/** A port nothing listens on: bound once by us, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A back end that accepts TCP connections and never says a word. */
async function blackHole(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function timeTo451(port: number, runs: number): Promise<Record<string, unknown>> {
  const times: number[] = [];
  let reply = '';
  for (let i = 0; i < runs; i++) {
    const result = await probeTransaction(port, BACKEND_TIMEOUT_MS * 4);
    if (result.firstFailureMs === undefined) throw new Error(`expected a 451, got ${JSON.stringify(result.steps)}`);
    times.push(result.firstFailureMs);
    reply = result.firstFailure ?? '';
  }
  return { runs, medianMs: round(median(times)), maxMs: round(Math.max(...times)), reply };
}

/** (c) How long a client waits for its 451 when the back end is down or black-holed. */
async function backendDown(workDir: string): Promise<Record<string, unknown>> {
  const down = await startEdge(await closedPort(), workDir, 'down');
  let closed: Record<string, unknown>;
  try {
    closed = await timeTo451(down.port, 5);
  } finally {
    await down.stop();
  }
  const hole = await blackHole();
  const silent = await startEdge(hole.port, workDir, 'blackhole');
  try {
    return { backendTimeoutMs: BACKEND_TIMEOUT_MS, portClosed: closed, blackHoled: await timeTo451(silent.port, 2) };
  } finally {
    await silent.stop();
    await hole.close();
  }
}

function senderAuthRows(a: { cachedMs: number; uncachedMs: number; queriesPerMessage: number; runs: number; messages: number }): Array<[string, string]> {
  return [
    [`SPF + DKIM + ARC + DMARC per message, DNS cached (median of ${a.runs} x ${a.messages})`, `${round(a.cachedMs, 2)} ms`],
    [`the same, nothing cached (${a.queriesPerMessage} DNS queries to loopback)`, `${round(a.uncachedMs, 2)} ms`],
  ];
}

function table(results: Record<string, Record<string, unknown>>): string {
  const t = results.throughput as Record<string, number>;
  const memory = results.memory as { runs: Array<Record<string, number>> };
  const b = results.backendDown as { portClosed: Record<string, unknown>; blackHoled: Record<string, unknown>; backendTimeoutMs: number };
  const d = results.dnsblCache as { medianMicros: number; runs: number; iterations: number };
  const e = results.engine as { messagesPerSecond: number; receiveOnlyMessagesPerSecond: number; runs: number; messages: number; clients: number };
  const q = results.queueBacklog as { backlog: number; fresh: number; deliverFreshMs: number; runs: number };
  const sc = results.dnsblScore as { scoringCachedMicros: number; scoringUncachedMicros: number; firstMatchCachedMicros: number; lists: number };
  const rows: Array<[string, string]> = [
    [`smtp-source -> smtp-sink (${t.sessions} sessions, ${t.messages} x ${t.messageBytes} B), median of ${t.runs}`, `${t.directMedian} msg/s`],
    ['smtp-source -> edge -> smtp-sink, same run', `${t.edgeMedian} msg/s`],
    ['edge / direct', `${t.edgeToDirectRatio}`],
    ...memory.runs.map((m): [string, string] => [
      `edge RSS relaying one ${m.messageMiB} MiB message: baseline -> peak (growth)`,
      `${m.baselineRssMiB} -> ${m.peakRssMiB} MiB (+${m.growthMiB} MiB, ${m.seconds} s)`,
    ]),
    ['time to 451, back end port closed (median)', `${b.portClosed.medianMs} ms  [${b.portClosed.reply}]`],
    [`time to 451, back end black-holed (timeoutMs ${b.backendTimeoutMs})`, `${b.blackHoled.medianMs} ms  [${b.blackHoled.reply}]`],
    [`cached DNSBL verdict (median of ${d.runs} x ${d.iterations})`, `${round(d.medianMicros, 2)} µs`],
    [`transport engine, fsync on, ${e.clients} clients (median of ${e.runs} x ${e.messages}): accepted while delivering`, `${round(e.messagesPerSecond)} msg/s`],
    ['transport engine, receive path alone (delivery held)', `${round(e.receiveOnlyMessagesPerSecond)} msg/s`],
    [`transport engine, ${q.fresh} fresh messages delivered past ${q.backlog} waiting (median of ${q.runs}, fsync off)`, `${q.deliverFreshMs} ms`],
    [`DNSBL scoring, ${sc.lists} lists, added per session: cached / uncached (first-match, same lists, cached)`, `${round(sc.scoringCachedMicros, 1)} / ${round(sc.scoringUncachedMicros)} µs (${round(sc.firstMatchCachedMicros, 1)} µs)`],
    ...protocolTestsRows(results.protocolTests as unknown as ProtocolTestsBench),
    ...senderAuthRows(results.senderAuth as { cachedMs: number; uncachedMs: number; queriesPerMessage: number; runs: number; messages: number }),
    ...replayRows(results.replay as unknown as ReplayBench),
    ...rulesCostRows(results.rulesCost as unknown as RulesCostBench),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const framing = framingTable(results.framing as unknown as FramingCost);
  const pool = poolTable(results.pool as unknown as PoolThroughputBench);
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n\n${framing}\n\n${pool}\n\n${limitsTable(results.limits as unknown as LimitsCostBench)}`;
}

function replayRows(r: ReplayBench): Array<[string, string]> {
  return [
    [`replay of ${r.sessions} recorded sessions, live rule set (no change) / candidate (${r.candidateChangedRecipients} recipients change)`, `${r.liveSessionsPerSecond} / ${r.candidateSessionsPerSecond} sessions/s`],
    ['decision record size', `${r.bytesPerSession} B/session`],
  ];
}

function rulesCostRows(r: RulesCostBench): Array<[string, string]> {
  return [[`policy session, CPU: no rules / realistic rules of the peers mode (median of ${r.runs} x ${r.iterations})`, `${round(r.noRulesMicros, 1)} / ${round(r.realisticMicros, 1)} µs (+${round(r.addedMicros, 1)} µs)`]];
}

async function main(): Promise<void> {
  const workDir = await tempDir('portcullis-bench-');
  try {
    const results: Record<string, Record<string, unknown>> = {};
    process.stdout.write('(a) throughput ...\n');
    results.throughput = await throughput(workDir);
    process.stdout.write(`(b) big messages (${BIG_MESSAGE_MIB.join(', ')} MiB) ...\n`);
    const runs: Array<Record<string, number>> = [];
    for (const mib of BIG_MESSAGE_MIB) runs.push(await bigMessage(workDir, mib * 1024 * 1024));
    results.memory = { runs };
    process.stdout.write('(c) back end down / black-holed ...\n');
    results.backendDown = await backendDown(workDir);
    process.stdout.write('(d) DNSBL cache ...\n');
    results.dnsblCache = { ...(await dnsblCache()) };
    process.stdout.write('(e) transport engine ...\n');
    results.engine = { ...(await engineThroughput()) };
    process.stdout.write('(f) framing cost per body kind ...\n');
    results.framing = { ...(await framingCost(ROOT)) };
    process.stdout.write('(g) transport engine past a retry backlog ...\n');
    results.queueBacklog = { ...(await queueBacklog()) };
    process.stdout.write('(h) transport engine beside Postfix ...\n');
    results.enginePostfix = { ...(await enginePostfix(MESSAGES, RUNS)) };
    process.stdout.write('(i) back-end session pool ...\n');
    results.pool = { ...(await poolThroughput()) };
    process.stdout.write('(j) DNSBL scoring cost per session ...\n');
    results.dnsblScore = { ...(await dnsblScore()) };
    process.stdout.write('(k) cost of each limit per session ...\n');
    results.limits = { ...(await limitsCost()) };
    process.stdout.write('(l) protocol tests at the door ...\n');
    results.protocolTests = { ...(await protocolTests()) };
    process.stdout.write('(m) sender authentication per message ...\n');
    results.senderAuth = { ...(await senderAuth()) };
    process.stdout.write('(n) replay of a 100,000-session record log ...\n');
    results.replay = { ...(await replayBench()) };
    process.stdout.write('(o) the realistic rule set per policy session ...\n');
    results.rulesCost = { ...(await rulesCost()) };
    const report = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      ...results,
    };
    await fs.writeFile(path.join(ROOT, 'bench/results.json'), `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\n${table(results)}\n\n${comparisonTable(results.enginePostfix as unknown as EnginePostfixBench)}\n\nwritten: bench/results.json\n`);
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

(process.argv[2] === 'peers' || process.env.BENCH === 'peers' ? runPeers(ROOT) : main()).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
