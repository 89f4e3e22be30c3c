/** Postfix's smtp-sink as a real SMTP peer for tests: started on a free loopback port, each transaction dumped to a file. */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SmtpSink {
  port: number;
  /** Every transaction received so far: smtp-sink's X-Mail-Args / X-Rcpt-Args lines followed by the message. */
  transactions(): Promise<string[]>;
  stop(): Promise<void>;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolves once something accepts TCP connections on the port (bounded: 5 s). */
async function waitForListener(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`smtp-sink exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`smtp-sink did not listen on ${port}`);
}

/**
 * Starts /usr/sbin/smtp-sink on 127.0.0.1 (the unprivileged user when run as root); `flags` are more of
 * its options, e.g. `-N` (no DSN) or `-q CONNECT` (hang up on every client before the greeting).
 */
export async function startSmtpSink(flags: string[] = []): Promise<SmtpSink> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-sink-'));
  await chmod(dir, 0o777);
  const port = await freePort();
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), ...flags, '-d', `${dir}/%s.`, `127.0.0.1:${port}`, '50'];
  const child = spawn('/usr/sbin/smtp-sink', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForListener(port, child);
  return {
    port,
    async transactions() {
      const names = (await readdir(dir)).sort();
      return Promise.all(names.map((n) => readFile(path.join(dir, n), 'utf8')));
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
