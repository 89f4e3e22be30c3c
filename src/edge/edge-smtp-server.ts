/**
 * smtp-server with every reply under the edge's control, through the one module that reaches into
 * smtp-server's internals (net/smtp-server-adapter.ts).
 *
 * Handlers answer their command with the edge's own reply (`answer`): its enhanced codes
 * (reply-codes.md) and the back end's replies passed through. smtp-server's own replies (syntax,
 * order, size, time-outs) get the contract's enhanced codes here (`libraryReply`). The connection
 * also decodes DATA with the edge's own decoder (data-decoder.ts) and keeps the session's deadlines
 * (session-deadlines.ts), which no byte a client trickles in extends.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import type { SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { isHeloName } from '../net/helo-name.js';
import { upperWord } from '../net/command-verb.js';
import { AdaptedConnection, AdaptedSmtpServer, type Adaptation } from '../net/smtp-server-adapter.js';
import { DataDecoder } from './data-decoder.js';
import { PipeliningGuard } from './pipelining-guard.js';
import { ReplyGroups } from './reply-groups.js';
import { withSessionId } from './session-id-reply.js';
import { SessionDeadlines, type DeadlineHost, type DeadlineLimits, type Expired } from './session-deadlines.js';
import { classDefault, fromServerLines, reply, type SmtpReply } from '../net/smtp-reply.js';

/** Told about every command line read and every reply written (for the protocol log and metrics), and every transaction reset. */
export interface WireObserver {
  command(session: SMTPServerSession, line: string): void;
  reply(session: SMTPServerSession, reply: SmtpReply): void;
  /** smtp-server forgot the transaction: RSET, HELO/EHLO, the end of DATA. */
  reset(session: SMTPServerSession): void;
  /**
   * The client sent a command ahead of a reply where RFC 2920 does not allow it: the reply that
   * refuses it (and closes), or undefined when the session does not enforce the pipelining test.
   */
  unauthorisedPipelining(session: SMTPServerSession): SmtpReply | undefined;
}

/**
 * smtp-server holds every greeting back a fixed 100 ms to catch early talkers. A sending MTA opens a
 * connection per batch, so that pause capped the edge at ~10 connections/s per concurrent client; the
 * edge greets as soon as the connect-time policy has answered. Once it has ended a session (221, a
 * closing 421 or refusal) and the reply is with the kernel, it closes the socket as Postfix's smtpd
 * does, instead of half-closing it for up to 5 s: a sender that resets after 221 (SO_LINGER 0) then
 * costs no ECONNRESET error, and what a client sends after the end is refused by the kernel.
 */
const EDGE_ADAPTATION: Adaptation = { greetAtOnce: true, closeAtOnce: true, decoder: () => new DataDecoder() };

const COMMAND_TIMEOUT = reply(421, '4.4.2', 'Timeout waiting for a command, closing connection');
const SESSION_TIME_LIMIT = reply(421, '4.4.2', 'Session time limit reached, closing connection');
const PROXY_REFUSED = reply(421, '4.7.0', 'PROXY header not accepted from this address');

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

const NON_ASCII_ADDRESS = reply(553, '5.6.7', 'Non-ASCII addresses not permitted without SMTPUTF8');
const BAD_HELO_ARGUMENT = reply(501, '5.5.4', 'Invalid domain name or address literal');

/**
 * What the edge would pass on but a client must not be able to write, refused before smtp-server takes
 * it: a HELO/EHLO argument that is no host name or address literal (it goes into XFORWARD and
 * `Received:`), and any 8-bit byte in MAIL FROM or RCPT TO, since SMTPUTF8 is not offered (RFC 6531
 * 3.4). `line` is the command's bytes as Latin-1, so each byte is one character; `ascii`: none of them is
 * 8-bit (the adapter has looked already).
 */
export function refuseArgument(line: string, ascii: boolean): SmtpReply | undefined {
  const verb = verbOf(line);
  if (verb === 'MAIL' || verb === 'RCPT') return ascii ? undefined : NON_ASCII_ADDRESS;
  if (verb !== 'HELO' && verb !== 'EHLO') return undefined;
  // Only printable ASCII: smtp-server would split on Unicode white space and keep the rest.
  if (!PRINTABLE.test(line)) return BAD_HELO_ARGUMENT;
  const name = onlyArgument(line);
  return name !== undefined && !isHeloName(name) ? BAD_HELO_ARGUMENT : undefined;
}

const PRINTABLE = /^[\t\x20-\x7e]*$/;

/** The second word of a line of exactly two (words separated by runs of spaces and tabs), else undefined; found without splitting the line. */
function onlyArgument(line: string): string | undefined {
  let at = 0;
  let second: string | undefined;
  for (let words = 0; ; words += 1) {
    while (isBlank(line.charCodeAt(at))) at += 1;
    if (at >= line.length) return words === 2 ? second : undefined;
    const start = at;
    while (at < line.length && !isBlank(line.charCodeAt(at))) at += 1;
    if (words === 1) second = line.slice(start, at);
    else if (words === 2) return undefined;
  }
}

/**
 * The line's first word (words are separated by runs of spaces and tabs) upper-cased when it has four
 * characters, the length of every verb refuseArgument looks at, else ''; found without splitting the
 * line, which every command line passes through.
 */
function verbOf(line: string): string {
  let start = 0;
  while (isBlank(line.charCodeAt(start))) start += 1;
  let end = start;
  while (end < line.length && !isBlank(line.charCodeAt(end))) end += 1;
  return end - start === 4 ? upperWord(line, start, end) : '';
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** One client connection; see the module comment. */
class EdgeConnection extends AdaptedConnection implements DeadlineHost {
  private readonly deadlines: SessionDeadlines;
  /** Until the session turns out not to enforce the test, or TLS starts (bytes on the raw socket are then ciphertext). */
  private pipelining: PipeliningGuard | undefined = new PipeliningGuard();
  /** Until TLS starts, as the pipelining test. */
  private groups: ReplyGroups | undefined;
  private readonly countBytes = (chunk: Buffer): void => {
    this.pipelining?.received(chunk.length, this.inData);
    this.groups?.received(chunk, this.inData);
  };

  constructor(
    server: AdaptedSmtpServer,
    socket: net.Socket | tls.TLSSocket,
    options: SMTPConnectionOptions | null,
    private readonly observer: WireObserver,
    limits: DeadlineLimits,
  ) {
    super(server, socket, options);
    // The connection is its deadlines' host: an object and two closures less that each connection holds.
    this.deadlines = new SessionDeadlines(limits, this);
    this.groups = new ReplyGroups(socket);
    // Before smtp-server pipes the socket into its parser, so each chunk is counted before it is parsed.
    socket.on('data', this.countBytes);
  }

  protected override get adaptation(): Adaptation {
    return EDGE_ADAPTATION;
  }

  /** DeadlineHost: the client is waiting on the edge. */
  waitingOnUs(): boolean {
    return this.owesReply;
  }

  /** DeadlineHost: a deadline passed, 421 and close. */
  expire(what: Expired): void {
    this.writeReply(what === 'command' ? COMMAND_TIMEOUT : SESSION_TIME_LIMIT, false);
  }

  override writeReply(written: SmtpReply, close: boolean): void {
    // Bytes came while the client had to wait for this reply: the refusal goes out in its place.
    if (this.pipelining?.violated) {
      const refusal = this.pipeliningRefusal();
      if (refusal) return this.writeReply(refusal, true);
    }
    const r = withSessionId(written, this.session.id);
    this.pipelining?.replied(r.code);
    this.observer.reply(this.session, r);
    const held = this.groups?.holding(close) ?? false;
    super.writeReply(r, close);
    this.groups?.written(held);
    this.deadlines.replied(this.inData);
  }

  protected override writeOwnReply(code: number, data: string | string[] | null | undefined, context: string | false | undefined): void {
    this.writeReply(libraryReply(code, data, context), false);
  }

  protected override transactionReset(): void {
    this.observer.reset(this.session);
  }

  protected override ending(): void {
    this.groups?.flush();
    this.deadlines.stop();
  }

  protected override commandRead(line: string, ascii: boolean, ready: boolean): SmtpReply | undefined {
    this.deadlines.commandRead();
    this.observer.command(this.session, line);
    this.groups?.command(line);
    // A PROXY v1 header reaching the SMTP dialogue came from an address that is not a configured
    // balancer (headers from balancers are consumed before the session starts): refuse it. A v2
    // header is binary and already fails as unrecognised commands.
    // Each test only for a line that can match it (a letter's case is its 0x20 bit): MAIL, RCPT and DATA,
    // four lines a message, open with neither letter.
    const first = line.charCodeAt(0) | 0x20;
    if (first === 0x70 && /^PROXY /i.test(line)) return PROXY_REFUSED;
    if (!ready) return undefined;
    const starttls = first === 0x73 && (this.pipelining || this.groups) && /^STARTTLS\b/i.test(line);
    if (this.pipelining) {
      this.pipelining.command(line);
      const refusal = this.pipelining.violated ? this.pipeliningRefusal() : undefined;
      if (refusal) return refusal;
      if (starttls) this.stopPipeliningTest();
    }
    // After STARTTLS the raw socket carries ciphertext, and smtp-server writes to the TLS socket.
    if (starttls) this.stopGrouping();
    return refuseArgument(line, ascii);
  }

  /** The session's refusal of a pipelining client, once; the test ends either way. */
  private pipeliningRefusal(): SmtpReply | undefined {
    this.stopPipeliningTest();
    return this.observer.unauthorisedPipelining(this.session);
  }

  private stopPipeliningTest(): void {
    this.pipelining = undefined;
    if (!this.groups) this._socket.off('data', this.countBytes);
  }

  private stopGrouping(): void {
    this.groups?.flush();
    this.groups = undefined;
    if (!this.pipelining) this._socket.off('data', this.countBytes);
  }
}

/** An SMTPServer whose connections are EdgeConnections; sockets are handed to it with `connect`. */
export class EdgeSmtpServer extends AdaptedSmtpServer {
  constructor(options: SMTPServerOptions, observer: WireObserver, deadlines: DeadlineLimits) {
    super(options, (server, socket, socketOptions) => new EdgeConnection(server, socket, socketOptions, observer, deadlines));
  }
}
