/**
 * The bundled engine beside Postfix, in the same run on the same load: smtp-source sends 2 KB
 * messages to one local mailbox, at 8 and 32 sessions, a new connection per message and connections
 * reused (`-d`). Postfix is a private instance the benchmark configures in a temporary folder
 * (smtpd → cleanup → queue with fsync → qmgr → virtual into a Maildir); the engine runs as
 * `portcullis transport` with fsync on. For each: accepted msg/s (smtp-source's own time), delivered
 * msg/s (until the Maildir holds every message), CPU per message (utime + stime of the process tree,
 * reaped children included, from /proc), and in a separate pass under `strace -f -c` (when installed)
 * fsync calls from receipt to Maildir at 1, 8 and 32 sessions (over runs of 200 and 400 messages, so
 * that what each message costs is told apart from what a fresh store and mailbox cost once). Rows alternate Postfix and
 * engine, so both see the same machine load.
 */
import type { ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, launch, pause, run as runCommand, smtpSource, tempDir, type Running } from '../test/interop/peers.js';
import { syncCalls, tracee, underStrace } from '../test/support/strace.js';

/** The repository (benchmarks run from its root, as `npm run bench` does). */
const ROOT = process.cwd();
const MESSAGE_BYTES = 2048;
const RECIPIENT = 'user@example.test';
const TICKS_PER_SECOND = 100;

/** One row of the table: a server under one load. */
export interface ServerRow {
  acceptedPerSecond: number;
  deliveredPerSecond: number;
  cpuMsPerMessage: number;
}

export interface ComparisonRow {
  sessions: number;
  reuse: boolean;
  postfix: ServerRow;
  engine: ServerRow;
  /** engine / Postfix, each figure (CPU: lower is better, so ≤ 1 meets the target). */
  ratios: { accepted: number; delivered: number; cpu: number };
}

export interface EnginePostfixBench {
  messages: number;
  runs: number;
  rows: ComparisonRow[];
  /** `npm start` (edge + engine) beside the engine alone, 8 sessions reusing connections: delivered msg/s and their ratio. */
  /** Absent when only some rows were asked for (`BENCH_LOADS`). */
  endToEnd?: { engine: ServerRow; edgeAndEngine: ServerRow; deliveredRatio: number; pairRatios: number[] };
  /** fsync + fdatasync calls per message, receipt to Maildir, by sessions; absent without strace. */
  fsyncsPerMessage?: Record<string, { postfix: FsyncCount; engine: FsyncCount }>;
}

/** A server under test: where to send, how many files its Maildir holds, its CPU so far. */
interface Server {
  port: number;
  delivered(): Promise<number>;
  cpuTicks(): Promise<number>;
  stop(): Promise<void>;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function countFiles(dir: string): Promise<number> {
  return (await readdir(dir).catch(() => [] as string[])).length;
}

/** utime + stime of `pid` and every descendant, plus what reaped children left in cutime + cstime. */
async function treeTicks(pid: number): Promise<number> {
  const parents = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields.length < 15) continue;
    parents.set(Number(name), Number(fields[1]));
    ticks.set(Number(name), Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]));
  }
  const inTree = (p: number): boolean => {
    for (let q: number | undefined = p, hops = 0; q !== undefined && q > 1 && hops < 64; q = parents.get(q), hops++) if (q === pid) return true;
    return false;
  };
  let total = 0;
  for (const [p, t] of ticks) if (inTree(p)) total += t;
  return total;
}

/** Waits (bounded) until `count()` reaches `target`; resolves to the seconds since `started`. */
async function waitCount(count: () => Promise<number>, target: number, started: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await count();
    if (n >= target) return (performance.now() - started) / 1000;
    if (Date.now() > deadline) throw new Error(`only ${n} of ${target} delivered within ${timeoutMs} ms`);
    await pause(20);
  }
}

function childStop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** The command line, under strace when `straceOut` is given. */
function traced(command: string, args: string[], straceOut: string | undefined): [string, string[]] {
  return straceOut ? underStrace(command, args, straceOut) : [command, args];
}

/** A private Postfix: its own config, queue and data directories, smtpd on a loopback port, virtual delivery into a Maildir. */
async function startPostfix(work: string, straceOut?: string): Promise<Server> {
  const dir = path.join(work, `postfix-${Math.random().toString(36).slice(2, 8)}`);
  const etc = path.join(dir, 'etc');
  const mail = path.join(dir, 'mail');
  for (const d of [etc, path.join(dir, 'queue'), path.join(dir, 'data')]) await mkdir(d, { recursive: true });
  await mkdir(path.join(mail, 'user'), { recursive: true });
  const uid = Number((await runCommand('id', ['-u', 'postfix'])).stdout.trim());
  const gid = Number((await runCommand('id', ['-g', 'postfix'])).stdout.trim());
  // Postfix keeps its lock in data_directory as mail_owner; virtual writes the Maildir as the mapped uid.
  await chown(path.join(dir, 'data'), uid, gid);
  await chown(mail, uid, gid);
  await chown(path.join(mail, 'user'), uid, gid);
  const port = await freePort();
  await writeFile(
    path.join(etc, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${path.join(dir, 'queue')}`,
      `data_directory = ${path.join(dir, 'data')}`,
      'mail_owner = postfix',
      'setgid_group = postdrop',
      'myhostname = postfix.bench.test',
      'mydestination =',
      'alias_maps =',
      'alias_database =',
      'local_recipient_maps =',
      'inet_interfaces = 127.0.0.1',
      'inet_protocols = ipv4',
      'mynetworks = 127.0.0.0/8',
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      'virtual_mailbox_domains = example.test',
      `virtual_mailbox_base = ${mail}`,
      `virtual_mailbox_maps = texthash:${path.join(etc, 'vmailbox')}`,
      `virtual_uid_maps = static:${uid}`,
      `virtual_gid_maps = static:${gid}`,
      'smtpd_client_connection_count_limit = 0',
      'smtpd_client_connection_rate_limit = 0',
      'smtpd_client_message_rate_limit = 0',
      'default_process_limit = 100',
      'smtputf8_enable = no',
      `syslog_name = postfix-bench-${path.basename(dir)}`,
      '',
    ].join('\n'),
  );
  await writeFile(path.join(etc, 'vmailbox'), `${RECIPIENT} user/\n`);
  // Debian's master.cf services, without chroot (the queue directory holds no copy of /etc), smtpd on our port.
  await writeFile(
    path.join(etc, 'master.cf'),
    [
      `127.0.0.1:${port} inet n - n - - smtpd`,
      'pickup unix n - n 60 1 pickup',
      'cleanup unix n - n - 0 cleanup',
      'qmgr unix n - n 300 1 qmgr',
      'rewrite unix - - n - - trivial-rewrite',
      'bounce unix - - n - 0 bounce',
      'defer unix - - n - 0 bounce',
      'trace unix - - n - 0 bounce',
      'verify unix - - n - 1 verify',
      'flush unix n - n 1000? 0 flush',
      'proxymap unix - - n - - proxymap',
      'smtp unix - - n - - smtp',
      'relay unix - - n - - smtp',
      'showq unix n - n - - showq',
      'error unix - - n - - error',
      'retry unix - - n - - error',
      'discard unix - - n - - discard',
      'local unix - n n - - local',
      'virtual unix - n n - - virtual',
      'anvil unix - - n - 1 anvil',
      'scache unix - - n - 1 scache',
      '',
    ].join('\n'),
  );
  const check = await runCommand('/usr/sbin/postfix', ['-c', etc, 'check'], { timeoutMs: 60_000 });
  if (check.code !== 0) throw new Error(`postfix check failed (see the system log): ${check.stdout}${check.stderr}`);
  const postfixArgs = ['-c', etc, 'start-fg'];
  const [command, args] = traced('/usr/sbin/postfix', postfixArgs, straceOut);
  const server: Running = launch(command, args);
  await waitForPortOpen(port, server, 30_000);
  const pid = server.child.pid as number;
  return {
    port,
    delivered: () => countFiles(path.join(mail, 'user', 'new')),
    cpuTicks: () => treeTicks(pid),
    stop: async () => {
      await runCommand('/usr/sbin/postfix', ['-c', etc, 'stop'], { timeoutMs: 30_000 });
      await childStop(server.child, 'SIGTERM', 15_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Waits (bounded) until something accepts connections on `port`. */
async function waitForPortOpen(port: number, server: Running, timeoutMs: number): Promise<void> {
  const net = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`exited (${server.child.exitCode}):\n${server.output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    await pause(100);
  }
  throw new Error(`nothing listens on ${port} after ${timeoutMs} ms:\n${server.output()}`);
}

/** The engine alone (`portcullis transport`), fsync on, as its own process. */
function startEngine(work: string, straceOut?: string): Promise<Server> {
  return startPortcullis(work, false, straceOut);
}

/** What `npm start` runs: `portcullis serve`, the edge relaying to the bundled engine in the same process. */
function startEdgeAndEngine(work: string): Promise<Server> {
  return startPortcullis(work, true);
}

async function startPortcullis(work: string, withEdge: boolean, straceOut?: string): Promise<Server> {
  const dir = path.join(work, `engine-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const enginePort = withEdge ? await freePort() : port;
  const admin = await freePort();
  const limits = '{ maxMessagesPerConnection: 100000, maxConnections: 1000, maxConnectionsPerClient: 1000 }';
  await writeFile(
    path.join(dir, 'rules.yaml'),
    [
      'hostname: mx.bench.test',
      'acceptedDomains: [example.test]',
      `listeners: [{ name: edge, listen: "127.0.0.1:${withEdge ? port : 2525}", limits: ${limits} }]`,
      `directory: { addresses: [${RECIPIENT}] }`,
      'log: { level: warn }',
      `badmail: ${path.join(dir, 'badmail')}`,
      'transport:',
      `  listen: 127.0.0.1:${enginePort}`,
      `  admin: { listen: "127.0.0.1:${admin}" }`,
      '  dataDir: data',
      '  fsync: true',
      '',
    ].join('\n'),
  );
  const compiled = path.join(ROOT, 'dist/src/cli/main.js');
  const entry = existsSync(compiled) && process.env.BENCH_FROM_SOURCE === undefined
    ? [compiled]
    : ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];
  const [command, args] = traced(process.execPath, [...entry, withEdge ? 'serve' : 'transport', '--config', path.join(dir, 'rules.yaml')], straceOut);
  const server = launch(command, args, { cwd: ROOT });
  await waitForPortOpen(port, server, 30_000);
  const pid = server.child.pid as number;
  return {
    port,
    delivered: () => countFiles(path.join(dir, 'data', 'mailboxes', RECIPIENT, 'new')),
    cpuTicks: () => treeTicks(pid),
    stop: async () => {
      // Under strace the engine is strace's child: strace itself would only detach on SIGTERM.
      const engine = straceOut ? await tracee(pid) : undefined;
      if (engine !== undefined) process.kill(engine, 'SIGTERM');
      await childStop(server.child, 'SIGTERM', 15_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function sourceArgs(sessions: number, messages: number, reuse: boolean): string[] {
  return ['-s', String(sessions), '-m', String(messages), '-l', String(MESSAGE_BYTES), ...(reuse ? ['-d'] : []), '-M', 'bench.test', '-f', 'load@bench.test', '-t', RECIPIENT];
}

/** One load against a running server: accepted and delivered msg/s and CPU per message. */
async function measure(server: Server, sessions: number, messages: number, reuse: boolean): Promise<ServerRow> {
  const before = await server.delivered();
  const cpu0 = await server.cpuTicks();
  const started = performance.now();
  await smtpSource(server.port, sourceArgs(sessions, messages, reuse), 900_000);
  const accepted = (performance.now() - started) / 1000;
  const delivered = await waitCount(async () => (await server.delivered()) - before, messages, started, 900_000);
  const cpu = (await server.cpuTicks()) - cpu0;
  return {
    acceptedPerSecond: round(messages / accepted),
    deliveredPerSecond: round(messages / delivered),
    cpuMsPerMessage: round(((cpu / TICKS_PER_SECOND) * 1000) / messages, 2),
  };
}

function medianRow(rows: ServerRow[]): ServerRow {
  return {
    acceptedPerSecond: median(rows.map((r) => r.acceptedPerSecond)),
    deliveredPerSecond: median(rows.map((r) => r.deliveredPerSecond)),
    cpuMsPerMessage: median(rows.map((r) => r.cpuMsPerMessage)),
  };
}

/**
 * fsync calls of a fresh server's run: over the whole run of `messages`, and split into what each
 * further message costs and what a run costs once (a new store's and a new mailbox's directories),
 * from a second run of twice as many: the once-per-run syncs are the same in both.
 */
export interface FsyncCount {
  /** Every call of the run of `messages`, divided by `messages`. */
  overRun: number;
  /** (calls over 2 × messages − calls over messages) ÷ messages. */
  perMessage: number;
  /** Calls over messages − perMessage × messages. */
  once: number;
}

async function fsyncsPerMessage(work: string, start: (work: string, straceOut?: string) => Promise<Server>, sessions: number, messages: number): Promise<FsyncCount> {
  const one = await syncsOfRun(work, start, sessions, messages);
  const two = await syncsOfRun(work, start, sessions, 2 * messages);
  const perMessage = (two - one) / messages;
  return { overRun: round(one / messages, 2), perMessage: round(perMessage, 2), once: Math.round(one - perMessage * messages) };
}

/** fsync and fdatasync calls at `sessions` sessions: a fresh server under strace, `messages` sent, stopped. */
async function syncsOfRun(work: string, start: (work: string, straceOut?: string) => Promise<Server>, sessions: number, messages: number): Promise<number> {
  const out = path.join(work, `strace-${Math.random().toString(36).slice(2, 8)}.txt`);
  const server = await start(work, out);
  try {
    await smtpSource(server.port, sourceArgs(sessions, messages, true), 900_000);
    await waitCount(server.delivered, messages, performance.now(), 900_000);
  } finally {
    await server.stop();
  }
  return syncCalls(out);
}

/**
 * Alternating pairs in the `npm start` section, whatever `runs` says: one pair's ratio moved 0.72–1.05 with
 * the machine's load, and a pair costs seconds, not minutes.
 */
const END_TO_END_PAIRS = 7;

/** `npm start`'s path (the edge in front of the engine) against the engine alone, alternating runs. */
async function edgeBesideEngine(work: string, messages: number, runs: number): Promise<NonNullable<EnginePostfixBench['endToEnd']>> {
  const engine = await startEngine(work);
  const both = await startEdgeAndEngine(work);
  try {
    await measure(engine, 2, 50, true);
    await measure(both, 2, 50, true);
    const e: ServerRow[] = [];
    const b: ServerRow[] = [];
    for (let i = 0; i < Math.max(runs, END_TO_END_PAIRS); i++) {
      e.push(await measure(engine, 8, messages, true));
      b.push(await measure(both, 8, messages, true));
    }
    const em = medianRow(e);
    const bm = medianRow(b);
    const pairRatios = e.map((row, i) => round(b[i]!.deliveredPerSecond / row.deliveredPerSecond, 2));
    return { engine: em, edgeAndEngine: bm, deliveredRatio: round(bm.deliveredPerSecond / em.deliveredPerSecond, 2), pairRatios };
  } finally {
    await both.stop();
    await engine.stop();
  }
}

const ALL_LOADS = [
  { sessions: 8, reuse: false },
  { sessions: 8, reuse: true },
  { sessions: 32, reuse: false },
  { sessions: 32, reuse: true },
];

/**
 * Runs the comparison: every row `runs` times on one Postfix and one engine, alternating; medians.
 * Given only some `loads`, it measures those rows alone (no `npm start` section, no fsync counts).
 */
export async function run(messages = 2000, runs = 3, loads?: { sessions: number; reuse: boolean }[]): Promise<EnginePostfixBench> {
  const work = await tempDir('portcullis-bench-postfix-');
  // Postfix's daemons run as mail_owner and must reach their directories inside it.
  await chmod(work, 0o755);
  try {
    const postfix = await startPostfix(work);
    const engine = await startEngine(work);
    const rows: ComparisonRow[] = [];
    try {
      // A small warm-up each, so that process start-up and JIT do not land in the first sample.
      await measure(postfix, 2, 50, true);
      await measure(engine, 2, 50, true);
      for (const load of loads ?? ALL_LOADS) {
        const p: ServerRow[] = [];
        const e: ServerRow[] = [];
        for (let i = 0; i < runs; i++) {
          p.push(await measure(postfix, load.sessions, messages, load.reuse));
          e.push(await measure(engine, load.sessions, messages, load.reuse));
        }
        const pm = medianRow(p);
        const em = medianRow(e);
        rows.push({
          ...load,
          postfix: pm,
          engine: em,
          ratios: {
            accepted: round(em.acceptedPerSecond / pm.acceptedPerSecond, 2),
            delivered: round(em.deliveredPerSecond / pm.deliveredPerSecond, 2),
            cpu: round(em.cpuMsPerMessage / pm.cpuMsPerMessage, 2),
          },
        });
      }
    } finally {
      await engine.stop();
      await postfix.stop();
    }
    const result: EnginePostfixBench = { messages, runs, rows };
    if (loads) return result;
    result.endToEnd = await edgeBesideEngine(work, messages, runs);
    if ((await runCommand('sh', ['-c', 'command -v strace'])).code === 0) {
      const counted = Math.min(messages, 200);
      result.fsyncsPerMessage = {};
      for (const sessions of [1, 8, 32]) {
        result.fsyncsPerMessage[String(sessions)] = {
          postfix: await fsyncsPerMessage(work, startPostfix, sessions, counted),
          engine: await fsyncsPerMessage(work, startEngine, sessions, counted),
        };
      }
    }
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The table: one line per load. */
export function comparisonTable(r: EnginePostfixBench): string {
  const lines = [
    '| sessions, mode | Postfix accepted / in Maildir (msg/s) | engine accepted / in Maildir | CPU per message, engine / Postfix | ratios accepted, delivered, CPU |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.sessions}, ${row.reuse ? 'connection reused' : 'new connection per message'} | ${row.postfix.acceptedPerSecond} / ${row.postfix.deliveredPerSecond} | ` +
        `${row.engine.acceptedPerSecond} / ${row.engine.deliveredPerSecond} | ${row.engine.cpuMsPerMessage} ms / ${row.postfix.cpuMsPerMessage} ms | ` +
        `${row.ratios.accepted}, ${row.ratios.delivered}, ${row.ratios.cpu} |`,
    );
  }
  const e = r.endToEnd;
  if (e) lines.push(
    `npm start (edge + engine), 8 sessions reused: ${e.edgeAndEngine.acceptedPerSecond} / ${e.edgeAndEngine.deliveredPerSecond} msg/s accepted / delivered, ` +
      `engine alone ${e.engine.acceptedPerSecond} / ${e.engine.deliveredPerSecond}: ${e.deliveredRatio} of the engine alone ` +
      `(medians of ${e.pairRatios.length} alternating pairs; each pair: ${e.pairRatios.join(', ')})`,
  );
  const count = (c: FsyncCount): string => `${c.perMessage} per message + ${c.once} once (${c.overRun} over the run)`;
  for (const [sessions, f] of Object.entries(r.fsyncsPerMessage ?? {})) lines.push(`fsyncs at ${sessions} session(s): engine ${count(f.engine)}, Postfix ${count(f.postfix)}`);
  return lines.join('\n');
}

/** `BENCH_LOADS`, e.g. `32r,8n`: only these rows (sessions, r = connection reused, n = new connection per message). */
function loadsFromEnv(spec: string | undefined): { sessions: number; reuse: boolean }[] | undefined {
  if (!spec) return undefined;
  return spec.split(',').map((item) => {
    const m = /^(\d+)([rn])$/.exec(item.trim());
    if (!m) throw new Error(`BENCH_LOADS: ${item} is not <sessions>r or <sessions>n`);
    return { sessions: Number(m[1]), reuse: m[2] === 'r' };
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run(Number(process.env.BENCH_MESSAGES ?? 2000), Number(process.env.BENCH_RUNS ?? 3), loadsFromEnv(process.env.BENCH_LOADS));
  process.stdout.write(`${comparisonTable(r)}\n(medians of ${r.runs} runs x ${r.messages} messages of ${MESSAGE_BYTES} bytes)\n`);
}
