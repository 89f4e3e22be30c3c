/**
 * HAProxy (Debian's 2.6) as the load balancer in front of the edge, in the foreground with a config
 * written to a temporary folder: one TCP frontend per back-end server, each server health-checked
 * with `option smtpchk` over the PROXY protocol version it is given.
 */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { freePort, launch, pause, tempDir, waitForPorts, type Running } from './peers.js';

export const HAPROXY = '/usr/sbin/haproxy';

/** One edge listener behind HAProxy. */
export interface Balanced {
  name: string;
  /** The edge listener's port. */
  port: number;
  proxy: 'v1' | 'v2';
}

/** A server's line of HAProxy's `show stat`, the fields the tests read. */
export interface ServerStat {
  status: string;
  checkStatus: string;
  checkFailures: number;
}

export interface Haproxy extends Running {
  /** The frontend port that forwards to each server, by name. */
  frontends: Record<string, number>;
  /** HAProxy's own view of each server, from its stats socket. */
  stats(): Promise<Record<string, ServerStat>>;
}

/** Starts HAProxy with `check inter <checkIntervalMs>` on every server; a single failed check marks it DOWN. */
export async function startHaproxy(servers: Balanced[], checkIntervalMs = 100): Promise<Haproxy> {
  const dir = await tempDir('portcullis-haproxy-');
  const socket = path.join(dir, 'admin.sock');
  const frontends: Record<string, number> = {};
  const sections: string[] = [];
  for (const s of servers) {
    frontends[s.name] = await freePort();
    sections.push(
      `frontend f-${s.name}`,
      `  bind 127.0.0.1:${frontends[s.name]}`,
      `  default_backend b-${s.name}`,
      `backend b-${s.name}`,
      '  option smtpchk',
      `  server ${s.name} 127.0.0.1:${s.port} check inter ${checkIntervalMs} rise 1 fall 1 ${s.proxy === 'v2' ? 'send-proxy-v2' : 'send-proxy'} check-send-proxy`,
    );
  }
  const config = [
    'global',
    `  stats socket ${socket} mode 600 level admin`,
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout check 2s',
    ...sections,
    '',
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  await fs.writeFile(file, config);
  const running = launch(HAPROXY, ['-f', file, '-db']);
  try {
    await waitForPorts(running, 'tcp', servers.length);
  } catch (err) {
    await running.stop();
    await fs.rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...running,
    frontends,
    stats: () => showStat(socket),
    stop: async (graceMs?: number) => {
      await running.stop(graceMs);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** `show stat` over the stats socket: HAProxy's CSV, one line per frontend, backend and server. */
async function showStat(socketPath: string): Promise<Record<string, ServerStat>> {
  const csv = await new Promise<string>((resolve, reject) => {
    const c = net.connect(socketPath);
    let text = '';
    c.on('data', (d: Buffer) => (text += d.toString()));
    c.on('end', () => resolve(text));
    c.on('error', reject);
    c.end('show stat\n');
  });
  const [head, ...rows] = csv.trim().split('\n');
  const columns = (head ?? '').replace(/^# /, '').split(',');
  const col = (row: string[], name: string): string => row[columns.indexOf(name)] ?? '';
  const out: Record<string, ServerStat> = {};
  for (const line of rows) {
    const row = line.split(',');
    const name = col(row, 'svname');
    if (name === 'FRONTEND' || name === 'BACKEND') continue;
    // A check in progress prefixes the last check's status with '* '.
    const checkStatus = col(row, 'check_status').replace(/^\* /, '');
    out[name] = { status: col(row, 'status'), checkStatus, checkFailures: Number(col(row, 'chkfail')) };
  }
  return out;
}

/** Polls (bounded) until `done` holds for HAProxy's stats, returning the last ones read. */
export async function waitForStats(
  haproxy: Haproxy,
  done: (stats: Record<string, ServerStat>) => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<Record<string, ServerStat>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await haproxy.stats();
    if ((await done(stats)) || Date.now() > deadline) return stats;
    await pause(100);
  }
}
