/**
 * One back-end SMTP session, driven in lock-step with the client transaction that borrows it (the
 * pool, backend-pool.ts, lends it to one transaction after another).
 *
 * Why not nodemailer's SMTPConnection.send(): it takes the whole envelope at once, offers every
 * recipient before reporting any, and only then starts DATA. The edge must offer each recipient the
 * moment the client gives it, hand the back end's reply for that one recipient back to the client,
 * and hold DATA until the header From: check has passed. Its lower-level methods are private, so this
 * is a small lock-step client on net/tls.
 *
 * Every write is a system call that also wakes the back end, and they dominate the edge's cost per
 * message; so where PIPELINING allows, commands whose order is fixed anyway share one write: XFORWARD
 * goes with MAIL FROM, and QUIT with the final dot when the session's last transaction ends there.
 * The reader still counts each of them as a command owed its own reply, so a back end's stray or early
 * reply can never be taken for the answer to a later command (see backend-reply-reader.ts).
 *
 * Longer than 350 lines because the session's steps (connect, EHLO, STARTTLS, the client's
 * attributes, MAIL, RCPT, DATA, RSET, abandon) share one socket and one reply reader, and which writes
 * may share a packet is only visible when they are read together.
 */
import net from 'node:net';
import tls from 'node:tls';
import { DotStuffer } from './dot-stuffing.js';
import { ReplyReader, type ReplyCheck } from './backend-reply-reader.js';
import { SharedBufferReads } from './shared-read-buffer.js';
import { asciiAddress } from '../net/address.js';
import { reply, SmtpError, type SmtpReply } from '../net/smtp-reply.js';
import { BackendUnavailable } from './backend-unavailable.js';
import { holdWritesPerTurn, release } from '../net/turn-writes.js';
import { forwardAttributes, type ForwardedClient } from './backend-forward.js';
import { IteratorPieces, type BackendConnection, type MessagePieces, type PieceSource } from './backend-connection.js';
import type { InProcessBackend } from './in-process-session.js';

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
  /**
   * The back end at host:port runs in this process (serve's bundled engine): sessions with it are
   * in-process ones (in-process-session.ts), with no connection and no SMTP text.
   */
  inProcess?: InProcessBackend;
}

export type { ForwardedClient } from './backend-forward.js';

const QUIT_LINE = Buffer.from('QUIT\r\n');

/** One message on its way to the back end (BackendSession.data): where its pieces come from, what is held, who is told. */
interface MessageRelay {
  pieces: PieceSource;
  stuffer: DotStuffer;
  /** Pieces read and not yet written (see data). */
  held: Buffer[];
  answered: (r: SmtpReply) => void;
  failed: (err: unknown) => void;
}

/** An open back-end session; every method resolves with the back end's own reply. */
export class BackendSession implements BackendConnection {
  private extensions = new Map<string, string>();
  private reader = new ReplyReader((err) => this.brokeProtocol(err), { greeting: true });
  private closed = false;
  /** Why the back end was dropped for breaking the protocol: what later writes fail with. */
  private protocolError: BackendUnavailable | undefined;
  /** XFORWARD waiting to go out with MAIL FROM (when the back end offers PIPELINING). */
  private pendingForward: string | undefined;
  /** QUIT already went out with the final dot; its reply is read by quit(). */
  private quitSent = false;
  /** The socket is corked by gather() and a flush is due. */
  private corked = false;
  /** gather()'s deferred flush, made once per connection rather than once per message. */
  private readonly flushSoon = (): void => this.flush();
  /** MAIL FROM was accepted and no final dot answered since: the back end holds a transaction open. */
  private transactionOpen = false;
  /** Between the 354 and the reply to the final dot: message bytes, not commands, are on the wire. */
  private inData = false;
  /** A command failed (time-out, refusal of XFORWARD or XCLIENT, a 421): the session is not lent again. */
  private broken = false;
  /** How this connection passes clients on, fixed by its first transaction. */
  private forwardedWith: 'XFORWARD' | 'XCLIENT' | undefined;
  /**
   * Whether the back end still offers `forwardedWith` (or none is fixed yet), found again at each EHLO
   * (forward() fixes `forwardedWith` only to what is offered): the pool asks `resettable` as it lends
   * and takes back the session, each transaction, and a lookup in the extensions `Map` each time was
   * most of its cost.
   */
  private canForward = true;
  /** Transactions begun on this connection. */
  transactions = 0;
  /** Set by the pool when this transaction is the session's last: QUIT may then go out with the final dot. */
  last = false;
  /** Told once when the connection closes, for whatever reason (the pool forgets it then). */
  onClose: (() => void) | undefined;

  private constructor(
    private socket: net.Socket,
    private readonly target: BackendTarget,
    reads: SharedBufferReads | undefined,
  ) {
    if (reads) reads.deliverTo(this.reader);
    this.attach(socket, reads === undefined);
  }

  /**
   * Connects, reads the greeting, says EHLO, and upgrades with STARTTLS when configured, all within
   * one deadline of `timeoutMs`. Rejects with BackendUnavailable (451 4.7.0) on any failure, a non-2xx
   * greeting included.
   */
  static async connect(target: BackendTarget): Promise<BackendSession> {
    // TLS reads through the stream of the socket it upgrades, so only a plain connection reads into the shared buffer.
    const reads = target.starttls ? undefined : new SharedBufferReads();
    const socket = await connectWithin(target.host, target.port, target.connectTimeoutMs ?? target.timeoutMs, reads);
    const session = new BackendSession(socket, target, reads);
    try {
      await session.handshake();
      return session;
    } catch (err) {
      session.abandon();
      throw err;
    }
  }

  /** A new connection with its first transaction begun for `client` (see begin). */
  static async open(target: BackendTarget, client: ForwardedClient): Promise<BackendSession> {
    const session = await BackendSession.connect(target);
    try {
      await session.begin(client);
      return session;
    } catch (err) {
      session.abandon();
      throw err;
    }
  }

  /**
   * Passes the client of the next transaction on with XFORWARD (with MAIL FROM, when the back end
   * offers PIPELINING) or XCLIENT (which restarts the session: EHLO again). Rejects with
   * BackendUnavailable if the back end refuses it.
   */
  begin(client: ForwardedClient): Promise<void> | undefined {
    this.transactions += 1;
    let waiting: Promise<void> | undefined;
    try {
      waiting = this.forward(client, this.target.timeoutMs);
    } catch (err) {
      this.broken = true;
      return Promise.reject(err);
    }
    return waiting?.catch(this.waitFailed);
  }

  /** Whether the session can be lent to another transaction: open, healthy, between commands, no transaction open. */
  get reusable(): boolean {
    return this.resettable && !this.transactionOpen;
  }

  /**
   * Whether the session can be made reusable by reset(): open, healthy, between commands, and still
   * able to pass a new client on. A back end whose EHLO after XCLIENT no longer offers XCLIENT
   * (smtp-server) would keep the previous client's identity for the next one: never lent again.
   */
  get resettable(): boolean {
    return this.canForward && !this.closed && !this.broken && !this.quitSent && !this.inData && this.reader.idle;
  }

  /**
   * Ends the back end's open transaction with RSET; true when it answered 250 (the session is clean
   * again), false otherwise (then the session is closed). Never throws.
   */
  async reset(): Promise<boolean> {
    try {
      const r = await this.command('RSET', 'RSET');
      if (r.code === 250) {
        this.transactionOpen = false;
        return true;
      }
    } catch {
      // A back end that cannot say 250 to RSET is not trusted with another client's transaction.
    }
    this.abandon();
    return false;
  }

  /** Whether the back end's EHLO offered an extension (upper-case keyword). */
  offers(keyword: string): boolean {
    return this.extensions.has(keyword);
  }

  /**
   * MAIL FROM; `params` are ESMTP parameters such as `BODY=8BITMIME`, sent only if the back end offers
   * them. A refused pipelined XFORWARD rejects with BackendUnavailable, as it would have in open().
   * One wait for both replies, with no async frame: the transaction's first wait on a pooled session.
   * With continuations, they run as the reader's wait settles, as RCPT TO's do (see rcptTo).
   */
  mailFrom(address: string, params?: { body?: string; size?: number }): Promise<SmtpReply>;
  mailFrom<T>(address: string, params: { body?: string; size?: number }, answered: (r: SmtpReply) => T, failed: (err: unknown) => T): Promise<T>;
  mailFrom(address: string, params: { body?: string; size?: number } = {}, answered?: (r: SmtpReply) => unknown, failed?: (err: unknown) => unknown): Promise<unknown> {
    try {
      let cmd = `MAIL FROM:<${onWire(address)}>`;
      if (params.body && this.offers('8BITMIME')) cmd += ` BODY=${params.body.toUpperCase()}`;
      if (params.size !== undefined && this.offers('SIZE')) cmd += ` SIZE=${params.size}`;
      const forward = this.pendingForward;
      if (forward === undefined) this.write(cmd);
      else {
        this.pendingForward = undefined;
        this.write(`${forward}\r\n${cmd}`, 2);
        this.reader.skip('XFORWARD', this.forwardChecked);
      }
    } catch (err) {
      return failed ? settledBy(failed, err) : Promise.reject(err);
    }
    if (!answered || !failed) return this.expect('MAIL FROM', this.target.timeoutMs, this.mailChecked);
    return this.reader.next(this.target.timeoutMs, 'MAIL FROM', this.mailChecked, answered, failed);
  }

  /** The reply to a pipelined XFORWARD: anything but 250 ends the session (checked as any reply first). */
  private readonly forwardChecked = (r: SmtpReply): void => {
    const x = this.checked(r, 'XFORWARD', isSuccess);
    if (x.code !== 250) {
      this.abandon();
      throw new BackendUnavailable(`XFORWARD refused: ${x.code}`);
    }
  };

  /** The reply to MAIL FROM, which opens the back end's transaction when it is below 400. */
  private readonly mailChecked = (r: SmtpReply): SmtpReply => {
    const checked = this.checked(r, 'MAIL FROM', isSuccess);
    this.transactionOpen = checked.code < 400;
    return checked;
  };

  /** The checks of the replies every transaction waits for, made once per session rather than once per wait. */
  private readonly rcptChecked = this.checkedFor('RCPT TO', isSuccess);
  private readonly dataChecked = this.checkedFor('DATA', isGoAhead);
  private readonly endChecked = this.checkedFor('end of data', isSuccess);

  /**
   * RCPT TO for one recipient; a line that cannot be written rejects, as every step does. With
   * continuations, they run as the reader's wait settles (ReplyReader.next), not in a `then`: RCPT TO
   * is a reused connection's one wait a message between the back end's reply and the client's with
   * none of its own.
   */
  rcptTo(address: string): Promise<SmtpReply>;
  rcptTo<T>(address: string, answered: (r: SmtpReply) => T, failed: (err: unknown) => T): Promise<T>;
  rcptTo(address: string, answered?: (r: SmtpReply) => unknown, failed?: (err: unknown) => unknown): Promise<unknown> {
    try {
      this.write(`RCPT TO:<${onWire(address)}>`);
    } catch (err) {
      return failed ? settledBy(failed, err) : Promise.reject(err);
    }
    if (!answered || !failed) return this.expect('RCPT TO', this.target.timeoutMs, this.rcptChecked);
    return this.reader.next(this.target.timeoutMs, 'RCPT TO', this.rcptChecked, answered, failed);
  }

  /**
   * DATA: sends the command, and on 354 streams `message` (dot-stuffed, with back-pressure: the next
   * chunk is read only once the back end's socket has taken the last ones), then the final dot, and
   * gives `answered` the back end's reply to it. A 4xx or 5xx reply to DATA goes to `answered` as is;
   * any other reply but 354 means the back end is not following the protocol (BackendUnavailable, to
   * `failed`, as every failure of the relay). If `message` fails (the client went away, a limit was
   * hit), the socket is destroyed before the final dot, so the back end delivers nothing, and
   * `failed` gets the message's error. The back end's transaction is over after the final dot whatever
   * its reply; when this was the session's `last` transaction and the back end offers PIPELINING, QUIT
   * goes out with the final dot.
   *
   * Continuations, not a promise: the two replies are waited for with the reader's own (ReplyReader.wait),
   * so that the reply to the final dot reaches the caller in the turn it is read, and the caller's one
   * promise for the message is the only one. Exactly one of `answered` and `failed` runs, once; neither
   * may throw.
   *
   * The pieces in hand are held until the message needs a wait or ends: a message that is all in hand
   * by the 354 (a small one, read with its header section) goes out with its final dot as one buffer
   * in one write, with no promise or microtask turn per piece and no deferred flush.
   */
  data(message: AsyncIterable<Buffer> | MessagePieces, answered: (r: SmtpReply) => void, failed: (err: unknown) => void): void {
    try {
      this.write('DATA');
    } catch (err) {
      return failed(err);
    }
    this.reader.wait(
      this.target.timeoutMs,
      'DATA',
      this.dataChecked,
      (go) => {
        // A refused DATA may leave the transaction open at the back end (RFC 5321 is silent): RSET before reuse.
        if (go.code !== 354) return answered(go);
        this.inData = true;
        const pieces = 'nextPiece' in message ? message : new IteratorPieces(message[Symbol.asyncIterator]() as AsyncIterator<Buffer, undefined>);
        this.send({ pieces, stuffer: new DotStuffer(), held: [], answered, failed });
      },
      failed,
    );
  }

  /**
   * Moves `relay`'s pieces on until one has to be waited for (then again from the wait's `then`) or
   * the message ends: then its final dot, and the wait for its reply.
   */
  private send(relay: MessageRelay): void {
    const { pieces, stuffer, held } = relay;
    try {
      for (;;) {
        const next = pieces.nextPiece();
        if (next instanceof Promise) {
          let waited: Promise<unknown> = next;
          if (held.length > 0) {
            const below = this.gather(held);
            held.length = 0;
            // Both waited on at once: a source failing while the back end drains must not go unheard.
            if (!below) waited = Promise.all([this.drained(), next]);
          }
          waited.then(
            () => this.send(relay),
            (err: unknown) => this.relayFailed(relay, err),
          );
          return;
        }
        if (next.done) break;
        held.push(stuffer.push(next.value));
      }
      held.push(stuffer.end());
      if (this.last && this.offers('PIPELINING')) {
        held.push(QUIT_LINE);
        this.quitSent = true;
      }
      this.reader.expect(this.quitSent ? 2 : 1);
      this.sendLast(held);
    } catch (err) {
      return this.relayFailed(relay, err);
    }
    const { answered } = relay;
    this.reader.wait(
      this.target.timeoutMs,
      'end of data',
      this.endChecked,
      (r) => {
        this.inData = false;
        this.transactionOpen = false;
        answered(r);
      },
      relay.failed,
    );
  }

  /**
   * The relay stopped before its final dot: the session is dropped, and, as `for await` leaves an
   * iterator early, the message is told to stop (a spooled message's file read ends); the error that
   * ended the relay is the one passed on, whatever stopping it says.
   */
  private relayFailed(relay: MessageRelay, err: unknown): void {
    this.abandon();
    const { pieces } = relay;
    if (!(pieces instanceof IteratorPieces) || !pieces.iterator.return) return relay.failed(err);
    pieces.iterator.return().then(
      () => relay.failed(err),
      () => relay.failed(err),
    );
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
    release(this.socket);
    this.socket.destroy();
  }

  private brokeProtocol(err: BackendUnavailable): void {
    this.protocolError = err;
    this.abandon();
  }

  private async handshake(): Promise<void> {
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
    this.noteForwarding();
  }

  /**
   * Passes `client` on; undefined when there is nothing to wait for, as with XFORWARD held back for
   * MAIL FROM (a pooled connection's every transaction: no async frame or promise of its own then).
   */
  private forward(client: ForwardedClient, timeoutMs: number): Promise<void> | undefined {
    const xforward = this.extensions.get('XFORWARD');
    if (!this.canForward) throw new BackendUnavailable(`${this.forwardedWith} no longer offered`);
    if (xforward !== undefined) {
      this.forwardedWith = 'XFORWARD';
      const line = `XFORWARD ${forwardAttributes(client, xforward)}`;
      if (!this.offers('PIPELINING')) return this.forwardAlone(line, timeoutMs);
      this.pendingForward = line;
      return undefined;
    }
    const xclient = this.extensions.get('XCLIENT');
    if (xclient === undefined) return undefined;
    this.forwardedWith = 'XCLIENT';
    return this.forwardWithXclient(`XCLIENT ${forwardAttributes(client, xclient)}`, timeoutMs);
  }

  private noteForwarding(): void {
    this.canForward = this.forwardedWith === undefined || this.offers(this.forwardedWith);
  }

  /** XFORWARD on its own, for a back end that does not offer PIPELINING. */
  private async forwardAlone(line: string, timeoutMs: number): Promise<void> {
    const r = await this.command(line, 'XFORWARD', timeoutMs);
    if (r.code !== 250) throw new BackendUnavailable(`XFORWARD refused: ${r.code}`);
  }

  private async forwardWithXclient(line: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const r = await this.command(line, 'XCLIENT', timeoutMs);
    // XCLIENT restarts the session with a new greeting, after which EHLO must be said again.
    if (r.code !== 220) throw new BackendUnavailable(`XCLIENT refused: ${r.code}`);
    await this.ehlo(Math.max(1, deadline - Date.now()));
  }

  private upgrade(timeoutMs: number): Promise<void> {
    // Bytes after the 220 to STARTTLS (a reply injected before the handshake) ended the session.
    if (this.closed) return Promise.reject(this.protocolError ?? new BackendUnavailable('connection closed before the TLS handshake'));
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
        this.reader = new ReplyReader((err) => this.brokeProtocol(err), { greeting: false });
        this.attach(secure, true);
        resolve();
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        reject(new BackendUnavailable(`TLS: ${err.message}`));
      });
    });
  }

  /** `streamed`: the socket's bytes come as 'data' events (not read into the shared buffer). */
  private attach(socket: net.Socket, streamed: boolean): void {
    const reader = this.reader;
    if (streamed) socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', (err) => reader.fail(new BackendUnavailable(err.message)));
    socket.on('close', () => {
      this.closed = true;
      reader.closed('connection closed');
      this.onClose?.();
    });
  }

  /** Writes `commands` (CRLF-separated lines) that are owed one reply each. */
  private write(lines: string, commands = 1): void {
    if (this.closed) throw this.protocolError ?? new BackendUnavailable('connection closed');
    this.reader.expect(commands);
    this.socket.write(`${lines}\r\n`);
  }

  /** Writes `line` and waits for its reply; throws at once when the connection is gone (every caller catches it). */
  private command(line: string, what: string, timeoutMs = this.target.timeoutMs, check: ReplyCheck = this.checkedFor(what, isSuccess)): Promise<SmtpReply> {
    this.write(line);
    return this.expect(what, timeoutMs, check);
  }

  /**
   * The reply to `what`, passed through `check` (by default `checked`) by the reader as it comes: a
   * pooled connection waits five times a message, and a `then` of its own on each wait cost a promise
   * and a turn of the microtask queue. A wait that fails leaves the session unfit for another
   * transaction without a mark of its own: a time-out, a protocol error or the connection's end fail
   * the reader (not `idle` again), and a reply `check` refuses abandons the session.
   */
  private expect(what: string, timeoutMs = this.target.timeoutMs, check: ReplyCheck = this.checkedFor(what, isSuccess)): Promise<SmtpReply> {
    return this.reader.next(timeoutMs, what, check);
  }

  private checkedFor(what: string, positive: (code: number) => boolean): ReplyCheck {
    return (r) => this.checked(r, what, positive);
  }

  /** A wait that failed (time-out, the connection gone, a protocol error) leaves the session unfit for another transaction. */
  private readonly waitFailed = (err: unknown): never => {
    this.broken = true;
    throw err;
  };

  /** `r` as the reply to `what`, or BackendUnavailable when it must not be passed on (see expect). */
  private checked(r: SmtpReply, what: string, positive: (code: number) => boolean): SmtpReply {
    // 421 means the back end is closing the channel: it is gone mid-transaction, the client retries.
    if (r.code === 421) {
      this.abandon();
      throw new BackendUnavailable(`${what}: 421 ${r.lines.join(' ')}`);
    }
    if (r.code < 400 && !positive(r.code)) {
      this.abandon();
      throw new BackendUnavailable(`${what}: unexpected ${r.code} ${r.lines.join(' ')}`);
    }
    return r;
  }

  /**
   * Queues `pieces` on the corked socket; everything queued before the event loop next polls goes out
   * in one system call (a small message and its final dot: one write). False when the socket holds
   * more than its high-water mark: then it is flushed now and the caller waits for drained().
   */
  private gather(pieces: Buffer[]): boolean {
    if (this.closed) throw this.protocolError ?? new BackendUnavailable('connection closed during DATA');
    const socket = this.socket;
    if (!this.corked) {
      socket.cork();
      this.corked = true;
      setImmediate(this.flushSoon);
    }
    let below = true;
    for (const piece of pieces) below = socket.write(piece) && below;
    if (!below) this.flush();
    return below;
  }

  /** The message's last pieces and its final dot: after what gather() queued, or in one write of their own. */
  private sendLast(pieces: Buffer[]): void {
    if (this.corked) {
      this.gather(pieces);
      this.flush();
      return;
    }
    if (this.closed) throw this.protocolError ?? new BackendUnavailable('connection closed during DATA');
    this.socket.write(pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces));
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
      const onClose = (): void => settle(this.protocolError ?? new BackendUnavailable('connection closed during DATA'));
      const timer = setTimeout(() => settle(new BackendUnavailable(`back end took no data for ${timeoutMs} ms`)), timeoutMs);
      socket.once('drain', onDrain);
      socket.once('close', onClose);
    });
  }
}

/** The address as handed to the back end: ASCII only, since the edge never asks for SMTPUTF8. */
export function onWire(address: string): string {
  const ascii = asciiAddress(address);
  if (ascii === undefined) throw new SmtpError(reply(553, '5.6.7', 'Non-ASCII addresses not permitted without SMTPUTF8'));
  return ascii;
}

/** What `failed` makes of `err`, as a promise (rejected with what it throws). */
function settledBy<T>(failed: (err: unknown) => T, err: unknown): Promise<T> {
  try {
    return Promise.resolve(failed(err));
  } catch (thrown) {
    return Promise.reject(thrown);
  }
}

function isSuccess(code: number): boolean {
  return code >= 200 && code < 300;
}

function isGoAhead(code: number): boolean {
  return code === 354;
}

/** TCP connect bounded by a time-out; refusals and time-outs become BackendUnavailable. */
function connectWithin(host: string, port: number, timeoutMs: number, reads: SharedBufferReads | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(reads ? { host, port, onread: reads.onread } : { host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new BackendUnavailable(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      holdWritesPerTurn(socket);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new BackendUnavailable(`connect to ${host}:${port}: ${err.message}`));
    });
  });
}
