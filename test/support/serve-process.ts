/** `portcullis serve` as a real subprocess from the TypeScript sources, its JSON log lines read as they come. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export interface Served {
  child: ChildProcess;
  port: number;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  /** Resolves with the first log line matching `pred`, bounded by `timeoutMs`. */
  waitLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Starts `serve --config FILE` (with `env` added to its environment) and resolves once the listener `main` has logged its port. */
export async function serve(config: string, env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      lines.push({ raw: l });
    }
    for (const w of waiters.splice(0)) w();
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitLog = async (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15000): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = lines.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`log line not seen; stderr: ${stderr}; lines: ${JSON.stringify(lines)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  const listening = await waitLog((l) => l.msg === 'listening' && l.listener === 'main');
  return { child, port: Number(listening.port), lines, exited, waitLog };
}

/**
 * A rule set (JSON) for `serve` with the bundled engine on free loopback ports, its data in `data`,
 * alice@example.com its one mailbox, no DNS off the machine; `extra` is merged at the top level.
 */
export function bundledServeRules(data: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    hostname: 'edge.test',
    acceptedDomains: ['example.com'],
    listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
    directory: { addresses: ['alice@example.com'] },
    dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
    transport: { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, dataDir: data, fsync: false },
    log: { level: 'info' },
    shutdownGraceMs: 500,
    ...extra,
  });
}

/** `serve` with the bundled engine, in a temporary folder of its own. */
export interface BundledServe {
  served: Served;
  /** The engine's data directory. */
  data: string;
  /** SIGTERM, then the folder removed; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `serve` on `bundledServeRules` in a fresh temporary folder; `extra(data)` is merged into the rule set. */
export async function serveBundled(prefix: string, extra: (data: string) => Record<string, unknown> = () => ({})): Promise<BundledServe> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `portcullis-${prefix}-`));
  const data = path.join(dir, 'data');
  const config = path.join(dir, 'rules.yaml');
  fs.writeFileSync(config, bundledServeRules(data, extra(data)));
  const served = await serve(config);
  return {
    served,
    data,
    async stop() {
      served.child.kill('SIGTERM');
      const code = await served.exited;
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
