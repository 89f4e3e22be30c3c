/**
 * The servers the peers benchmark (bench/peers.ts) compares, each relaying to its own smtp-sink:
 * Haraka (installed from the npm registry into a temporary folder, `queue/smtp_proxy`, one process or
 * a cluster), and Portcullis (`serve`, compiled). Also the CPU time of a process and its descendants.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { launch, pause, run, startServe, waitForPorts, writeRules, type Running } from '../test/interop/peers.js';

/** A server under test: where to send, and the process whose tree's CPU time is its cost. */
export interface Peer {
  port: number;
  /** The root process of the server (its workers are found as descendants); none for the direct path. */
  pid?: number;
  /** What it has written, for a failure's message. */
  output(): string;
  stop(): Promise<void>;
}

/** The Haraka release the issue measured; BENCH_HARAKA picks another. */
export const HARAKA_VERSION = process.env.BENCH_HARAKA ?? '3.3.4';

/**
 * Installs Haraka into a folder under the system's temporary directory, kept between runs (an install
 * takes about 40 s here); returns the path of its `haraka` command.
 */
export async function installHaraka(): Promise<string> {
  const dir = path.join(os.tmpdir(), `portcullis-bench-haraka-${HARAKA_VERSION}`);
  const bin = path.join(dir, 'node_modules', '.bin', 'haraka');
  if (await fs.stat(bin).then(() => true, () => false)) return bin;
  await fs.mkdir(dir, { recursive: true });
  const res = await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `Haraka@${HARAKA_VERSION}`], { cwd: dir, timeoutMs: 300_000 });
  if (res.code !== 0) throw new Error(`npm install Haraka@${HARAKA_VERSION} failed:\n${res.stdout}${res.stderr}`);
  return bin;
}

/**
 * Starts Haraka relaying to `sinkPort` with `queue/smtp_proxy`. The recipient domain is accepted by
 * `rcpt_to.in_host_list`; a one-line `lookup_rdns` plugin answers locally so it asks no DNS server.
 */
export async function startHaraka(bin: string, workDir: string, sinkPort: number, cluster: boolean): Promise<Peer> {
  const dir = path.join(await fs.mkdtemp(path.join(workDir, cluster ? 'haraka-cluster-' : 'haraka-')), 'haraka');
  // Haraka's own skeleton first: its core reads defaults from config files it writes there.
  const init = await run(process.execPath, [bin, '-i', dir], { timeoutMs: 60_000 });
  if (init.code !== 0) throw new Error(`haraka -i failed:\n${init.stdout}${init.stderr}`);
  const files: Record<string, string> = {
    'config/smtp.ini': `[main]\nlisten=127.0.0.1:0\n${cluster ? 'nodes=cpus\n' : ''}`,
    'config/plugins': 'lookup_rdns_local\nrcpt_to.in_host_list\nqueue/smtp_proxy\n',
    'config/host_list': 'example.test\n',
    'config/me': 'haraka.bench.test\n',
    'config/log.ini': '[main]\nlevel=warn\n',
    'config/smtp_proxy.ini': `host=127.0.0.1\nport=${sinkPort}\nenable_tls=false\n`,
    'plugins/lookup_rdns_local.js': "exports.hook_lookup_rdns = (next) => next(OK, 'localhost');\n",
  };
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  const server = launch(process.execPath, [bin, '-c', dir]);
  const [port] = await waitForPorts(server, 'tcp', 1, 60_000);
  return { port: port as number, pid: server.child.pid as number, output: server.output, stop: () => server.stop() };
}

/** Starts `portcullis serve` (compiled) with `rules` pointed at `sinkPort`. */
export async function startPortcullis(root: string, workDir: string, name: string, rules: Record<string, unknown>): Promise<Peer> {
  const config = await writeRules(workDir, rules, `${name}.yaml`);
  const edge = await startServe(config, { compiled: true, root });
  return { port: edge.port, pid: edge.child.pid as number, output: edge.output, stop: () => edge.stop() };
}

/** smtp-sink with its running counter (`-c`): how many messages it has taken, read from its output. */
export interface CountingSink extends Running {
  port: number;
  delivered(): Promise<number>;
}

/** The end of smtp-sink's output holds its latest counter line, `sess=N quit=N mesg=N\r`. */
const COUNTER_TAIL_BYTES = 128;

/**
 * Starts smtp-sink with its counter written to a file in `dir`. smtp-sink writes the counter once per
 * message; read through a pipe, that cost this process 30-80 ms per timed Portcullis run and 90-200 ms
 * per Haraka run, on the two cores the target was being measured on.
 */
export async function startCountingSink(dir: string): Promise<CountingSink> {
  const privilege = process.getuid?.() === 0 ? ['-u', 'root'] : [];
  const file = path.join(await fs.mkdtemp(path.join(dir, 'sink-')), 'counter');
  const sink = launch('/usr/sbin/smtp-sink', [...privilege, '-c', '127.0.0.1:0', '1024'], { outputFile: file });
  const [port] = await waitForPorts(sink, 'tcp');
  return {
    ...sink,
    port: port as number,
    delivered: async () => {
      const handle = await fs.open(file, 'r');
      try {
        const { size } = await handle.stat();
        const start = Math.max(0, size - COUNTER_TAIL_BYTES);
        const { buffer, bytesRead } = await handle.read(Buffer.alloc(size - start), 0, size - start, start);
        return Number([...buffer.subarray(0, bytesRead).toString('latin1').matchAll(/mesg=(\d+)\r/g)].at(-1)?.[1] ?? 0);
      } finally {
        await handle.close();
      }
    },
  };
}

/** Waits (bounded) until the sink has counted `count` messages; returns what it counted. */
export async function awaitDelivered(sink: CountingSink, count: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let delivered = await sink.delivered();
  while (delivered < count && Date.now() < deadline) {
    await pause(20);
    delivered = await sink.delivered();
  }
  return delivered;
}

export const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU milliseconds (user + system) used so far by `pid` and every live descendant, from /proc. */
export async function treeCpuMs(pid: number): Promise<number> {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const text = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after the command name, which may itself hold spaces and parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (fields.length < 13) continue;
    stats.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  let ticks = 0;
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.pop() as number;
    ticks += stats.get(p)?.ticks ?? 0;
    for (const [child, s] of stats) if (s.ppid === p) queue.push(child);
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}
