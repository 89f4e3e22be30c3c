/**
 * One back-end SMTP session per client transaction, driven in lock-step with the client.
 *
 * Why not nodemailer's SMTPConnection.send(): it takes the whole envelope at once, offers every
 * recipient before reporting any, and only then starts DATA. The edge must offer each recipient the
 * moment the client gives it, hand the back end's reply for that one recipient back to the client,
 * and hold DATA until the header From: check has passed. Its lower-level methods are private, so this
 * is a small lock-step client on net/tls.
 *
 * Every write is a system call that also wakes the back end, and they dominate the edge's cost per
 * message; so where PIPELINING allows, commands whose order is fixed anyway share one write: XFORWARD
 * goes with MAIL FROM, and QUIT with the final dot (the session always ends after DATA).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import { DotStuffer } from './dot-stuffing.js';
import { BackendUnavailable, fromServerLines, type SmtpReply } from './smtp-reply.js';

/** Where the back end is and how long to wait on it. */
export interface BackendTarget {
  host: string;
  port: number;
  /** Bound on every wait for the back end (a reply, the socket draining). */
  timeoutMs: number;
  /** Bound on the TCP connect; defaults to timeoutMs. */
  connectTimeoutMs?: number;
  /** Upgrade with STARTTLS; a back end that does not offer it is treated as unavailable. */
  starttls: boolean;
  tlsRejectUnauthorized: boolean;
  /** The name the edge gives in its own EHLO. */
  heloName: string;
}

/** The original client, passed on with XFORWARD or XCLIENT when the back end offers one. */
export interface ForwardedClient {
  address: string;
  /** Reverse-DNS name, when it was looked up. */
  hostname?: string;
  helo?: string;
  proto: 'SMTP' | 'ESMTP';
}

const MAX_REPLY_LINE = 4096;
const MAX_REPLY_LINES = 200;
const QUIT_LINE = Buffer.from('QUIT\r\n');

/** Parses the `smtp://host:port` of the `backend.url` key. */
export function parseBackendUrl(url: string): { host: string; port: number } {
  const m = /^smtp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d{1,5})\/?$/.exec(url);
  if (!m?.[1] || !m[2]) throw new Error(`backend.url: expected smtp://host:port, got '${url}'`);
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/** xtext (RFC 3461) for XFORWARD/XCLIENT values. */
function xtext(value: string): string {
  return value.replace(/[^!-*,-<>-~]/g, (c) => `+${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** Reads complete (possibly multi-line) replies off a socket, one wait at a time. */
class ReplyReader {
  private buffer = '';
  private lines: string[] = [];
  private ready: SmtpReply[] = [];
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  /** Why the connection closed, made into an error only if someone still waits (most closes are ours). */
  private closedBecause: string | undefined;

  push(chunk: Buffer): void {
    this.buffer += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.line(line);
    }
    if (this.buffer.length > MAX_REPLY_LINE) this.fail(new BackendUnavailable('reply line too long'));
  }

  fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }

  /** The connection is gone: a waiting reader fails now, later ones at once. */
  closed(detail: string): void {
    this.closedBecause ??= detail;
    if (this.waiter) this.fail(new BackendUnavailable(detail));
  }

  next(timeoutMs: number, what: string): Promise<SmtpReply> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (!this.failure && this.closedBecause !== undefined) this.failure = new BackendUnavailable(this.closedBecause);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new BackendUnavailable(`no reply to ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private line(line: string): void {
    const m = /^(\d{3})([ -]?)(.*)$/.exec(line);
    if (!m) return this.fail(new BackendUnavailable(`malformed reply line '${line.slice(0, 80)}'`));
    this.lines.push(m[3] ?? '');
    if (this.lines.length > MAX_REPLY_LINES) return this.fail(new BackendUnavailable('reply has too many lines'));
    if (m[2] === '-') return;
    const parsed = fromServerLines(Number(m[1]), this.lines);
    this.lines = [];
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w.resolve(parsed);
    else this.ready.push(parsed);
  }
}

/** An open back-end session; every method resolves with the back end's own reply. */
export class BackendSession {
  private extensions = new Map<string, string>();
  private reader = new ReplyReader();
  private closed = false;
  /** XFORWARD waiting to go out with MAIL FROM (when the back end offers PIPELINING). */
  private pendingForward: string | undefined;
  /** QUIT already went out with the final dot; its reply is read by quit(). */
  private quitSent = false;
  /** The socket is corked by gather() and a flush is due. */
  private corked = false;

  private constructor(
    private socket: net.Socket,
    private readonly target: BackendTarget,
  ) {
    this.attach(socket);
  }

  /**
   * Connects, reads the greeting, says EHLO, upgrades with STARTTLS when configured, and passes the
   * client on with XFORWARD or XCLIENT. Everything up to here shares one deadline of `timeoutMs`
   * (XFORWARD to a back end that offers PIPELINING goes out with MAIL FROM instead).
   * Rejects with BackendUnavailable (451 4.7.0) on any failure, a non-2xx greeting included.
   */
  static async open(target: BackendTarget, client: ForwardedClient): Promise<BackendSession> {
    const socket = await connectWithin(target.host, target.port, target.connectTimeoutMs ?? target.timeoutMs);
    const session = new BackendSession(socket, target);
    try {
      await session.handshake(client);
      return session;
    } catch (err) {
      session.abandon();
      throw err;
    }
  }

  /** Whether the back end's EHLO offered an extension (upper-case keyword). */
  offers(keyword: string): boolean {
    return this.extensions.has(keyword);
  }

  /**
   * MAIL FROM; `params` are ESMTP parameters such as `BODY=8BITMIME`, sent only if the back end offers
   * them. A refused pipelined XFORWARD rejects with BackendUnavailable, as it would have in open().
   */
  async mailFrom(address: string, params: { body?: string; size?: number } = {}): Promise<SmtpReply> {
    let cmd = `MAIL FROM:<${address}>`;
    if (params.body && this.offers('8BITMIME')) cmd += ` BODY=${params.body.toUpperCase()}`;
    if (params.size !== undefined && this.offers('SIZE')) cmd += ` SIZE=${params.size}`;
    const forward = this.pendingForward;
    if (forward === undefined) return this.command(cmd, 'MAIL FROM');
    this.pendingForward = undefined;
    this.write(`${forward}\r\n${cmd}`);
    const r = await this.expect('XFORWARD');
    if (r.code !== 250) {
      this.abandon();
      throw new BackendUnavailable(`XFORWARD refused: ${r.code}`);
    }
    return this.expect('MAIL FROM');
  }

  /** RCPT TO for one recipient. */
  rcptTo(address: string): Promise<SmtpReply> {
    return this.command(`RCPT TO:<${address}>`, 'RCPT TO');
  }

  /**
   * DATA: sends the command, and on 354 streams `message` (dot-stuffed, with back-pressure: the next
   * chunk is read only once the back end's socket has taken the last ones), then the final dot, and
   * resolves with the back end's reply to it. A non-354 reply to DATA is resolved as is. If `message`
   * fails (the client went away, a limit was hit), the socket is destroyed before the final dot, so
   * the back end delivers nothing, and the message's error is rethrown. The session is over after
   * DATA: with PIPELINING, QUIT goes out with the final dot.
   */
  async data(message: Readable | AsyncIterable<Buffer>): Promise<SmtpReply> {
    const go = await this.command('DATA', 'DATA');
    if (go.code !== 354) return go;
    const stuffer = new DotStuffer();
    try {
      for await (const chunk of message as AsyncIterable<Buffer>) {
        if (!this.gather([stuffer.push(chunk)])) await this.drained();
      }
      const last = [stuffer.end()];
      if (this.offers('PIPELINING')) {
        last.push(QUIT_LINE);
        this.quitSent = true;
      }
      this.gather(last);
      this.flush();
    } catch (err) {
      this.abandon();
      throw err;
    }
    return this.expect('end of data');
  }

  /** Ends the session politely (QUIT), bounded by the time-out; never throws. */
  async quit(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.quitSent) this.write('QUIT');
      this.quitSent = true;
      await this.reader.next(this.target.timeoutMs, 'QUIT');
    } catch {
      // The transaction is over either way; a back end that does not answer QUIT loses nothing.
    } finally {
      this.abandon();
    }
  }

  /** Drops the connection at once: whatever transaction is open is abandoned, nothing is delivered. */
  abandon(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private async handshake(client: ForwardedClient): Promise<void> {
    const deadline = Date.now() + this.target.timeoutMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    const greeting = await this.reader.next(left(), 'the greeting');
    if (greeting.code !== 220) throw new BackendUnavailable(`greeting ${greeting.code} ${greeting.lines.join(' ')}`);
    await this.ehlo(left());
    if (this.target.starttls) {
      if (!this.offers('STARTTLS')) throw new BackendUnavailable('STARTTLS is configured but not offered');
      const r = await this.command('STARTTLS', 'STARTTLS', left());
      if (r.code !== 220) throw new BackendUnavailable(`STARTTLS refused: ${r.code}`);
      await this.upgrade(left());
      await this.ehlo(left());
    }
    await this.forward(client, left);
  }

  private async ehlo(timeoutMs: number): Promise<void> {
    const r = await this.command(`EHLO ${this.target.heloName}`, 'EHLO', timeoutMs);
    if (r.code !== 250) throw new BackendUnavailable(`EHLO refused: ${r.code} ${r.lines.join(' ')}`);
    this.extensions = new Map(
      r.lines.slice(1).map((l) => {
        const [kw = '', ...rest] = l.trim().split(/\s+/);
        return [kw.toUpperCase(), rest.join(' ')] as const;
      }),
    );
  }

  private async forward(client: ForwardedClient, left: () => number): Promise<void> {
    const attrs = (allowed: string): string[] => {
      const offered = new Set(allowed.toUpperCase().split(/\s+/));
      const all: [string, string][] = [
        ['NAME', client.hostname ?? '[UNAVAILABLE]'],
        ['ADDR', net.isIPv6(client.address) ? `IPV6:${client.address}` : client.address],
        ['PROTO', client.proto],
        ['HELO', client.helo ?? '[UNAVAILABLE]'],
      ];
      return all.filter(([k]) => offered.has(k)).map(([k, v]) => `${k}=${v === '[UNAVAILABLE]' ? v : xtext(v)}`);
    };
    const xforward = this.extensions.get('XFORWARD');
    if (xforward !== undefined) {
      const line = `XFORWARD ${attrs(xforward).join(' ')}`;
      if (this.offers('PIPELINING')) {
        this.pendingForward = line;
        return;
      }
      const r = await this.command(line, 'XFORWARD', left());
      if (r.code !== 250) throw new BackendUnavailable(`XFORWARD refused: ${r.code}`);
      return;
    }
    const xclient = this.extensions.get('XCLIENT');
    if (xclient !== undefined) {
      const r = await this.command(`XCLIENT ${attrs(xclient).join(' ')}`, 'XCLIENT', left());
      // XCLIENT restarts the session with a new greeting, after which EHLO must be said again.
      if (r.code !== 220) throw new BackendUnavailable(`XCLIENT refused: ${r.code}`);
      await this.ehlo(left());
    }
  }

  private upgrade(timeoutMs: number): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    return new Promise((resolve, reject) => {
      const secure = tls.connect({
        socket: plain,
        servername: net.isIP(this.target.host) ? undefined : this.target.host,
        rejectUnauthorized: this.target.tlsRejectUnauthorized,
      });
      const timer = setTimeout(() => {
        secure.destroy();
        reject(new BackendUnavailable(`TLS handshake not done within ${timeoutMs} ms`));
      }, timeoutMs);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        this.socket = secure;
        this.reader = new ReplyReader();
        this.attach(secure);
        resolve();
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        reject(new BackendUnavailable(`TLS: ${err.message}`));
      });
    });
  }

  private attach(socket: net.Socket): void {
    const reader = this.reader;
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', (err) => reader.fail(new BackendUnavailable(err.message)));
    socket.on('close', () => {
      this.closed = true;
      reader.closed('connection closed');
    });
  }

  private write(line: string): void {
    if (this.closed) throw new BackendUnavailable('connection closed');
    this.socket.write(`${line}\r\n`);
  }

  private async command(line: string, what: string, timeoutMs = this.target.timeoutMs): Promise<SmtpReply> {
    this.write(line);
    return this.expect(what, timeoutMs);
  }

  private async expect(what: string, timeoutMs = this.target.timeoutMs): Promise<SmtpReply> {
    const r = await this.reader.next(timeoutMs, what);
    // 421 means the back end is closing the channel: it is gone mid-transaction, the client retries.
    if (r.code === 421) {
      this.abandon();
      throw new BackendUnavailable(`${what}: 421 ${r.lines.join(' ')}`);
    }
    return r;
  }

  /**
   * Queues `pieces` on the corked socket; everything queued before the event loop next polls goes out
   * in one system call (a small message and its final dot: one write). False when the socket holds
   * more than its high-water mark: then it is flushed now and the caller waits for drained().
   */
  private gather(pieces: Buffer[]): boolean {
    if (this.closed) throw new BackendUnavailable('connection closed during DATA');
    const socket = this.socket;
    if (!this.corked) {
      socket.cork();
      this.corked = true;
      setImmediate(() => this.flush());
    }
    let below = true;
    for (const piece of pieces) below = socket.write(piece) && below;
    if (!below) this.flush();
    return below;
  }

  /** Sends whatever gather() queued. */
  private flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  /** Resolves once the socket has passed its queue on; bounded by the time-out, failing if it closes. */
  private drained(): Promise<void> {
    const socket = this.socket;
    if (!socket.writableNeedDrain) return Promise.resolve();
    const timeoutMs = this.target.timeoutMs;
    return new Promise((resolve, reject) => {
      const settle = (err?: Error): void => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => settle();
      const onClose = (): void => settle(new BackendUnavailable('connection closed during DATA'));
      const timer = setTimeout(() => settle(new BackendUnavailable(`back end took no data for ${timeoutMs} ms`)), timeoutMs);
      socket.once('drain', onDrain);
      socket.once('close', onClose);
    });
  }
}

/** TCP connect bounded by a time-out; refusals and time-outs become BackendUnavailable. */
function connectWithin(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new BackendUnavailable(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new BackendUnavailable(`connect to ${host}:${port}: ${err.message}`));
    });
  });
}
