/**
 * smtp-server with every reply under the edge's control.
 *
 * smtp-server derives the enhanced status code from the reply code alone (a 550 from a handler
 * always becomes 5.1.1) and writes fixed texts on success ("250 Accepted"). The edge needs its own
 * enhanced codes (reply-codes.md) and must pass the back end's own replies through. So each
 * connection is a subclass whose `send` (a) writes the reply a handler queued with `queueReply`, or
 * (b) gives smtp-server's own replies (syntax, order, size, time-outs) the contract's enhanced codes.
 * The server subclass only swaps in that connection class, the way `SMTPServer.connect` builds its own.
 * The connection also decodes DATA with the edge's own decoder (edge-smtp-stream.ts) and keeps the
 * session's deadlines (session-deadlines.ts), which no byte a client trickles in extends.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { isHeloName } from '../net/helo-name.js';
import { EdgeSmtpStream } from './edge-smtp-stream.js';
import { SessionDeadlines, type DeadlineLimits } from './session-deadlines.js';
import { classDefault, fromServerLines, reply, replyTexts, type SmtpReply } from '../net/smtp-reply.js';

/** Told about every command line read and every reply written, for the protocol log and metrics. */
export interface WireObserver {
  command(session: SMTPServerSession, line: string): void;
  reply(session: SMTPServerSession, reply: SmtpReply): void;
}

interface Queued {
  reply: SmtpReply;
  close: boolean;
}

const queued = new WeakMap<SMTPServerSession, Queued>();
const connections = new WeakMap<SMTPServerSession, EdgeConnection>();

/**
 * Makes `reply` the next reply with the same code written on this session (the one smtp-server writes
 * when the handler calls back); `close` closes the connection once it is written.
 */
export function queueReply(session: SMTPServerSession, reply: SmtpReply, close = false): void {
  queued.set(session, { reply, close });
}

/** Writes a reply now, outside any command (time-outs, shutdown), and optionally closes. */
export function sendNow(session: SMTPServerSession, reply: SmtpReply, close: boolean): void {
  const conn = connections.get(session);
  if (!conn) return;
  queueReply(session, reply, close);
  conn.send(reply.code, reply.lines);
}

/** Closes a session's connection (FIN after what was written). */
export function closeSession(session: SMTPServerSession): void {
  connections.get(session)?.close();
}

const CONTEXT_CODES: Record<string, string> = {
  MAIL_FROM_OK: '2.1.0',
  RCPT_TO_OK: '2.1.5',
  DATA_OK: '2.6.0',
  MESSAGE_TOO_BIG: '5.3.4',
  TOO_MANY_RECIPIENTS: '4.5.3',
  NOT_AUTHORIZED: '5.7.0',
};

const CODE_DEFAULTS: Record<number, string> = {
  214: '2.0.0',
  221: '2.0.0',
  250: '2.0.0',
  252: '2.5.0',
  451: '4.3.0',
  452: '4.5.3',
  500: '5.5.2',
  501: '5.5.4',
  502: '5.5.1',
  503: '5.5.1',
  504: '5.5.4',
  530: '5.7.0',
  550: '5.7.1',
  552: '5.3.4',
};

/**
 * The reply smtp-server meant to write, with the contract's enhanced code: kept when the text already
 * starts with one; none for 3xx, the greeting and positive EHLO/HELO replies (context `false`); 421 is a
 * time-out (4.4.2), a shutdown (4.3.2), or else a refusal (4.7.0).
 */
export function libraryReply(code: number, data: string | string[] | null | undefined, context?: string | false): SmtpReply {
  const texts = Array.isArray(data) ? data : [data ?? ''];
  const own = fromServerLines(code, texts);
  if (own.enhanced !== classDefault(code) || /^\d\.0\.0( |$)/.test(texts[0] ?? '')) return own;
  // RFC 2034: no enhanced code on intermediate (3xx) replies, the greeting, or positive EHLO/HELO replies.
  if ((code >= 300 && code < 400) || (context === false && code < 400)) return { code, enhanced: '', lines: texts };
  let enhanced = (typeof context === 'string' ? CONTEXT_CODES[context] : undefined) ?? CODE_DEFAULTS[code];
  if (code === 421) {
    const text = texts.join(' ');
    enhanced = /timeout|timed out/i.test(text) ? '4.4.2' : /shutting down/i.test(text) ? '4.3.2' : '4.7.0';
  }
  return { code, enhanced: enhanced ?? classDefault(code), lines: texts };
}

/**
 * What the edge would pass on but a client must not be able to write, refused before smtp-server takes
 * it: a HELO/EHLO argument that is no host name or address literal (it goes into XFORWARD and
 * `Received:`), and any 8-bit byte in MAIL FROM or RCPT TO, since SMTPUTF8 is not offered (RFC 6531
 * 3.4). `line` is the command's bytes as Latin-1, so each byte is one character.
 */
function refuseArgument(line: string): SmtpReply | undefined {
  const [verb = '', ...args] = line.split(/[ \t]+/).filter((w) => w !== '');
  const command = verb.toUpperCase();
  // Only printable ASCII: smtp-server would split on Unicode white space and keep the rest.
  const printable = /^[\t\x20-\x7e]*$/.test(line);
  if ((command === 'HELO' || command === 'EHLO') && (!printable || (args.length === 1 && !isHeloName(args[0] ?? '')))) {
    return reply(501, '5.5.4', 'Invalid domain name or address literal');
  }
  if ((command === 'MAIL' || command === 'RCPT') && /[\x80-\xff]/.test(line)) {
    return reply(553, '5.6.7', 'Non-ASCII addresses not permitted without SMTPUTF8');
  }
  return undefined;
}

/** One client connection; see the module comment for why `send` is overridden. */
class EdgeConnection extends SMTPConnection {
  private readonly deadlines: SessionDeadlines;

  constructor(
    server: EdgeSmtpServer,
    socket: net.Socket | tls.TLSSocket,
    options: SMTPConnectionOptions | null,
    private readonly observer: WireObserver,
    limits: DeadlineLimits,
  ) {
    super(server, socket, options);
    connections.set(this.session, this);
    this.deadlines = new SessionDeadlines(limits, {
      waitingOnUs: () => this._handlerPending || (!!this._dataStream && !!this._parser && !this._parser._dataMode),
      expire: (what) =>
        this.send(421, what === 'command' ? '4.4.2 Timeout waiting for a command, closing connection' : '4.4.2 Session time limit reached, closing connection'),
    });
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    const q = queued.get(this.session);
    let r: SmtpReply;
    let close = false;
    // A queued reply is meant for the very next reply only; a stale one must never leak into a later one.
    if (q) queued.delete(this.session);
    if (q && q.reply.code === code) {
      r = q.reply;
      close = q.close;
    } else {
      r = libraryReply(code, data, context);
    }
    this.observer.reply(this.session, r);
    super.send(r.code, replyTexts(r), false);
    if (close) this.close();
    this.deadlines.replied(!!this._parser && this._parser._dataMode);
  }

  override close(): void {
    this.deadlines.stop();
    super.close();
  }

  override _onClose(): void {
    this.deadlines.stop();
    super._onClose();
  }

  /**
   * smtp-server holds every greeting back a fixed 100 ms to catch early talkers. A sending MTA opens
   * a connection per batch, so that pause capped the edge at ~10 connections/s per concurrent client;
   * the edge greets as soon as the connect-time policy has answered.
   */
  override init(): void {
    this._setListeners(() => this.connectionReady());
  }

  /** smtp-server's parser wiring, with the edge's DATA decoding (edge-smtp-stream.ts). */
  override _createParser(): EdgeSmtpStream {
    const parser = new EdgeSmtpStream({ maxCommandLength: this._server.options.maxCommandLength });
    parser.oncommand = (command, callback) => this._onCommand(command, callback);
    parser.on('error', (err: Error) => this.send(421, `Error: ${err.message}`));
    return parser;
  }

  override _onCommand(command: Buffer, callback?: () => void): void {
    this.deadlines.commandRead();
    const line = command.toString('latin1');
    this.observer.command(this.session, line);
    // A PROXY v1 header reaching the SMTP dialogue came from an address that is not a configured
    // balancer (headers from balancers are consumed before the session starts): refuse it. A v2
    // header is binary and already fails as unrecognised commands.
    if (/^PROXY /i.test(line)) {
      this.send(421, '4.7.0 PROXY header not accepted from this address');
      return;
    }
    const refusal = this._ready && !this._upgrading ? refuseArgument(line) : undefined;
    if (refusal) {
      this.send(refusal.code, replyTexts(refusal), false);
      setImmediate(() => this._whenWritable(callback ?? (() => undefined)));
      return;
    }
    super._onCommand(command, callback);
  }
}

/** An SMTPServer whose connections are EdgeConnections; sockets are handed to it with `connect`. */
export class EdgeSmtpServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    private readonly observer: WireObserver,
    private readonly deadlines: DeadlineLimits,
  ) {
    super(options);
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: SMTPConnectionOptions | null): void {
    const connection = new EdgeConnection(this, socket, socketOptions ?? null, this.observer, this.deadlines);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this.emit('error', err));
    connection.on('connect', (data: unknown) => this.emit('connect', data));
    connection.init();
  }
}
