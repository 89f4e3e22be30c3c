/** Shared pieces of the transport engine tests: rules, a manual clock, a raw SMTP client, bounded waits. */
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { RulesSchema, type Rules } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Clock, Timers } from '../../src/runtime/clock.js';
import { startTransportEngine, type TransportEngine, type TransportEngineOptions } from '../../src/transport/engine.js';
import { mailboxDir } from '../../src/transport/maildir.js';

/** A clock that moves only when told. */
export class ManualClock implements Clock {
  constructor(public t = Date.UTC(2024, 0, 1)) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Timers that fire only when told: `fire()` runs every wait set so far (not cleared), whatever its length. */
export class ManualTimers implements Timers {
  private readonly waiting = new Map<number, () => void>();
  private next = 0;
  setTimeout(fn: () => void, _ms: number): unknown {
    this.waiting.set(++this.next, fn);
    return this.next;
  }
  clearTimeout(handle: unknown): void {
    this.waiting.delete(handle as number);
  }
  /** Waits set and not cleared. */
  get pending(): number {
    return this.waiting.size;
  }
  fire(): void {
    const due = [...this.waiting.values()];
    this.waiting.clear();
    for (const fn of due) fn();
  }
}

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/** Rules for an engine on free loopback ports with its data in `dataDir`; `extra` is merged at the top level and into `transport`. */
export function engineRules(dataDir: string, extra: Record<string, unknown> = {}, transport: Record<string, unknown> = {}): Rules {
  return RulesSchema.parse({
    hostname: 'mx.example.test',
    acceptedDomains: ['example.test'],
    listeners: [{ name: 'edge', listen: '127.0.0.1:2525' }],
    directory: { mailboxes: [{ address: 'alice@example.test' }, { address: 'bob@example.test' }] },
    log: { level: 'silent' },
    dns: { servers: ['127.0.0.1:9'], timeoutMs: 500 },
    ...extra,
    transport: { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, dataDir, ...transport },
  });
}

/** Starts an engine with a silent logger. */
export function startEngine(rules: Rules, opts: TransportEngineOptions = {}): Promise<TransportEngine> {
  return startTransportEngine(rules, { logger: createLogger({ level: 'silent' }), pollMs: 200, ...opts });
}

/** One SMTP reply: its code and full text (all lines joined by \n). */
export interface Reply {
  code: number;
  text: string;
}

/** A raw SMTP client over a real socket: each `send` resolves to the server's reply. */
export class RawSmtp {
  private buffer = '';
  private waiting: ((r: Reply) => void) | undefined;
  private readonly replies: Reply[] = [];
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.parse();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.({ code: 0, text: 'connection closed' });
    });
    socket.on('error', () => undefined);
  }

  /** Connects and reads the greeting. */
  static async connect(port: number, host = '127.0.0.1'): Promise<{ client: RawSmtp; greeting: Reply }> {
    const socket = net.connect(port, host);
    const client = new RawSmtp(socket);
    const greeting = await client.next();
    return { client, greeting };
  }

  private parse(): void {
    for (;;) {
      const m = /^((?:\d{3}-[^\r\n]*\r\n)*)(\d{3}) ([^\r\n]*)\r\n/.exec(this.buffer);
      if (!m) return;
      this.buffer = this.buffer.slice(m[0].length);
      const lines = m[0].trimEnd().split('\r\n').map((l) => l.slice(4));
      this.replies.push({ code: Number(m[2]), text: lines.join('\n') });
      this.deliver();
    }
  }

  private deliver(): void {
    if (this.waiting && this.replies.length > 0) {
      const w = this.waiting;
      this.waiting = undefined;
      w(this.replies.shift() as Reply);
    }
  }

  /** The next reply (bounded: 10 s). */
  next(): Promise<Reply> {
    if (this.replies.length > 0) return Promise.resolve(this.replies.shift() as Reply);
    if (this.closed) return Promise.resolve({ code: 0, text: 'connection closed' });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SMTP reply within 10 s')), 10_000);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
    });
  }

  /** Sends one command line and resolves to the reply. */
  send(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }

  /** Sends message content (dot-stuffed) and the final dot; resolves to the reply after the dot. */
  data(content: string): Promise<Reply> {
    const body = content.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.socket.write(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    return this.next();
  }

  close(): void {
    this.socket.end('QUIT\r\n');
  }
}

/** A whole transaction; resolves to every reply, the last being the one after the dot (or the first refusal). */
export async function sendMessage(
  port: number,
  opts: { from: string; to: string[]; content: string; mailArgs?: string; rcptArgs?: string[]; before?: string[] },
): Promise<Reply[]> {
  const { client, greeting } = await RawSmtp.connect(port);
  const replies = [greeting];
  try {
    if (greeting.code !== 220) return replies;
    replies.push(await client.send('EHLO client.example.test'));
    for (const line of opts.before ?? []) replies.push(await client.send(line));
    const mail = await client.send(`MAIL FROM:<${opts.from}>${opts.mailArgs ? ` ${opts.mailArgs}` : ''}`);
    replies.push(mail);
    if (mail.code !== 250) return replies;
    for (const [i, to] of opts.to.entries()) {
      const args = opts.rcptArgs?.[i];
      replies.push(await client.send(`RCPT TO:<${to}>${args ? ` ${args}` : ''}`));
    }
    const data = await client.send('DATA');
    replies.push(data);
    if (data.code !== 354) return replies;
    replies.push(await client.data(opts.content));
    return replies;
  } finally {
    client.close();
  }
}

/** A simple message with a Message-ID. */
export function message(subject: string, messageId = `<${subject.replace(/\W/g, '')}@client.example.test>`): string {
  return `From: sender@remote.test\r\nTo: someone@example.test\r\nSubject: ${subject}\r\nMessage-ID: ${messageId}\r\n\r\nBody of ${subject}.\r\n`;
}

/** Waits until `check` is true (polled every 20 ms, at most `ms`). */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** The files in a mailbox's Maildir `new/` directory. */
export async function maildirFiles(root: string, mailbox: string): Promise<string[]> {
  return readdir(path.join(mailboxDir(root, mailbox), 'new')).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
}

/** The queue id in a `250 2.6.0 <id@host> Queued mail for delivery` reply. */
export function queuedId(r: Reply): string {
  const m = /^2\.6\.0 <([^@>]+)@[^>]+> Queued mail for delivery$/.exec(r.text);
  if (r.code !== 250 || !m) throw new Error(`not a queued reply: ${r.code} ${r.text}`);
  return m[1] as string;
}

/** The rule set of the engine run as its own process (`portcullis transport`): one local mailbox (alice@example.test), fsync on. */
export function engineProcessConfig(port: number, admin: number, dataDir: string): string {
  return [
    'hostname: mx.example.test',
    'acceptedDomains: [example.test]',
    'listeners: [{ name: edge, listen: "127.0.0.1:2525" }]',
    'directory: { addresses: [alice@example.test] }',
    'log: { level: warn }',
    'transport:',
    `  listen: 127.0.0.1:${port}`,
    `  admin: { listen: "127.0.0.1:${admin}" }`,
    `  dataDir: ${dataDir}`,
    '  fsync: true',
    '',
  ].join('\n');
}
