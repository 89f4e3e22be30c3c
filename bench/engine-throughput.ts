/**
 * Messages per second the transport engine accepts (answers 250 2.6.0, content and envelope fsynced)
 * from several concurrent SMTP clients on loopback, with fsync on. Two figures, each the median of
 * several runs: with the queue manager delivering to Maildir at the same time (what an operator
 * sees), and with pre-submission frozen (the receive path alone).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { engineRules, RawSmtp, startEngine } from '../test/transport/engine-harness.js';

export interface EngineThroughputBench {
  /** Median messages/second accepted while the engine also delivers. */
  messagesPerSecond: number;
  /** Median messages/second accepted with delivery held (pre-submission frozen). */
  receiveOnlyMessagesPerSecond: number;
  runs: number;
  messages: number;
  clients: number;
}

const BODY = `${'x'.repeat(76)}\r\n`.repeat(26);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** One client's share of a run: transactions on one connection until the shared count is used up. */
async function client(port: number, next: () => boolean): Promise<void> {
  const { client: c } = await RawSmtp.connect(port);
  await c.send('EHLO bench.client.test');
  try {
    let n = 0;
    while (next()) {
      n++;
      for (const cmd of ['MAIL FROM:<bench@remote.test>', 'RCPT TO:<alice@example.test>', 'DATA']) {
        const r = await c.send(cmd);
        if (r.code >= 400) throw new Error(`${cmd}: ${r.code} ${r.text}`);
      }
      const r = await c.data(`From: bench@remote.test\r\nTo: alice@example.test\r\nSubject: bench ${n}\r\n\r\n${BODY}`);
      if (r.code !== 250) throw new Error(`end of data: ${r.code} ${r.text}`);
    }
  } finally {
    c.close();
  }
}

async function oneRun(messages: number, clients: number, holdDelivery: boolean): Promise<number> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-bench-engine-'));
  const engine = await startEngine(engineRules(dir, {}, { fsync: true }));
  try {
    if (holdDelivery) await engine.manager.setFrozen('pre-submission', true);
    let left = messages;
    const next = (): boolean => left-- > 0;
    const start = process.hrtime.bigint();
    await Promise.all(Array.from({ length: clients }, () => client(engine.address.port, next)));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    return messages / seconds;
  } finally {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the benchmark: `runs` runs of `messages` 2 KB messages over `clients` connections, each way. */
export async function run(runs = 5, messages = 500, clients = 8): Promise<EngineThroughputBench> {
  const working: number[] = [];
  const receiveOnly: number[] = [];
  for (let i = 0; i < runs; i++) {
    working.push(await oneRun(messages, clients, false));
    receiveOnly.push(await oneRun(messages, clients, true));
  }
  return { messagesPerSecond: median(working), receiveOnlyMessagesPerSecond: median(receiveOnly), runs, messages, clients };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run();
  process.stdout.write(
    `transport engine, fsync on: ${r.messagesPerSecond.toFixed(0)} msg/s accepted while delivering, ` +
      `${r.receiveOnlyMessagesPerSecond.toFixed(0)} msg/s receive path alone (median of ${r.runs} runs x ${r.messages} messages, ${r.clients} clients)\n`,
  );
}
