/** A tiny raw-socket SMTP client for tests: sends lines, reads whole replies, sees EOF. */
import net from 'node:net';

/** One reply as read off the wire. */
export interface Reply {
  code: number;
  /** Each line without its `code[- ]` prefix. */
  lines: string[];
  /** The last line's full text, e.g. `550 5.7.1 Access denied`. */
  line: string;
}

/** A client connection; every read is bounded by a time-out. */
export class RawSmtpClient {
  private buffer = '';
  private ended = false;
  private waiters: (() => void)[] = [];
  /** Everything received, for assertions on the exact bytes. */
  transcript = '';

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      const s = d.toString('latin1');
      this.buffer += s;
      this.transcript += s;
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /**
   * Connects to host:port (127.0.0.1 by default). With `halfOpen`, the client keeps its side open
   * after the server's FIN until `quit()`, as MTAs that reconnect before closing the old socket do.
   */
  static connect(port: number, host = '127.0.0.1', options: { halfOpen?: boolean } = {}): Promise<RawSmtpClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, allowHalfOpen: options.halfOpen === true }, () => resolve(new RawSmtpClient(s)));
      s.once('error', reject);
    });
  }

  /** The next complete reply; rejects on EOF or after `timeoutMs`. */
  async read(timeoutMs = 5000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.take();
      if (r) return r;
      if (this.ended) throw new Error(`connection closed; unread: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; have ${JSON.stringify(this.buffer)}`);
      await this.wait(left);
    }
  }

  /** Sends one command line (CRLF added). */
  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Writes raw bytes. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends a command and reads its reply. */
  async cmd(line: string, timeoutMs = 5000): Promise<Reply> {
    this.send(line);
    return this.read(timeoutMs);
  }

  /** True once the server closed the connection (EOF) within `timeoutMs`, with nothing unread. */
  async closedByServer(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) await this.wait(deadline - Date.now());
    return this.ended;
  }

  /**
   * True once the server has reset the connection, writing NOOP every 100 ms up to `timeoutMs` (for a
   * client whose own side is still open after the server's EOF): a closed socket answers a write with a
   * reset, a half-closed one swallows it.
   */
  async resetOnWrite(timeoutMs = 2500): Promise<boolean> {
    let closed = false;
    this.socket.once('close', () => (closed = true));
    for (let waited = 0; waited < timeoutMs && !closed; waited += 100) {
      this.send('NOOP');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return closed;
  }

  /** Bytes received that no read() consumed. */
  get unread(): string {
    return this.buffer;
  }

  /** Closes from our side (FIN). */
  quit(): void {
    this.socket.end();
  }

  /** Resets the connection abruptly, as a client that died would. */
  kill(): void {
    this.socket.resetAndDestroy();
  }

  private take(): Reply | undefined {
    const lines: string[] = [];
    let pos = 0;
    for (;;) {
      const nl = this.buffer.indexOf('\r\n', pos);
      if (nl < 0) return undefined;
      const line = this.buffer.slice(pos, nl);
      pos = nl + 2;
      lines.push(line.slice(4));
      if (line[3] !== '-') {
        this.buffer = this.buffer.slice(pos);
        return { code: Number(line.slice(0, 3)), lines, line };
      }
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** EHLO, MAIL, RCPT..., DATA, message, dot; returns every reply in order. Stops at the first refusal of MAIL or DATA. */
export async function sendMail(
  c: RawSmtpClient,
  from: string,
  to: string[],
  message: string,
): Promise<{ mail: Reply; rcpts: Reply[]; data?: Reply; end?: Reply }> {
  const mail = await c.cmd(`MAIL FROM:<${from}>`);
  const rcpts: Reply[] = [];
  if (mail.code !== 250) return { mail, rcpts };
  for (const r of to) rcpts.push(await c.cmd(`RCPT TO:<${r}>`));
  if (!rcpts.some((r) => r.code === 250)) return { mail, rcpts };
  const data = await c.cmd('DATA');
  if (data.code !== 354) return { mail, rcpts, data };
  c.write(message.replace(/^\./gm, '..') + (message.endsWith('\r\n') ? '' : '\r\n') + '.\r\n');
  const end = await c.read(15000);
  return { mail, rcpts, data, end };
}

/**
 * One of the edge's own replies, `text` exactly, ending in the session ID the edge adds to every
 * 4xx/5xx it writes itself (`550 5.7.1 Access denied [0123456789abcdef]`).
 */
export function edgeRefusal(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\[[0-9a-v]{16}\\]$`);
}
