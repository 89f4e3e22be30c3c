/**
 * The one place that reaches into smtp-server's private internals. It sits in the net layer so that
 * both the edge (edge-smtp-server.ts) and the engine's receive server use it without importing each
 * other. smtp-server is pinned to exactly SMTP_SERVER_VERSION in package.json, and
 * test/net/smtp-server-internals.test.ts names any member below that an upgrade removes or reshapes.
 *
 * What smtp-server offers no public way to do, and users of this module get without its internals:
 * - a handler answers its command with a whole reply (code, enhanced code, text) and may close after
 *   it (`answer`): smtp-server would derive the enhanced code from the reply code alone (a 550 from a
 *   handler always becomes 5.1.1) and writes fixed texts on success ("250 Accepted");
 * - smtp-server's own replies (syntax, order, size, time-outs) pass through `writeOwnReply`;
 * - each command line is seen, and may be refused, before smtp-server takes it (`commandRead`), and
 *   each reset of the transaction (RSET, HELO/EHLO, the end of DATA) is seen (`transactionReset`);
 * - replies are written outside any command (`sendNow`: time-outs, shutdown);
 * - the greeting goes out as soon as onConnect has answered (`greetAtOnce`), and DATA is decoded by
 *   the user's decoder (`decoder`) into a plain Readable (message-stream.ts), not a PassThrough;
 * - the greeting may open with a teaser line and a pause that catches clients talking first
 *   (`pauseGreeting`, postscreen's pre-greeting test);
 * - the server's last reply (QUIT's 221, a 421, a refusal) may close the socket at once (`closeAtOnce`);
 * - a listener of its own without a PROXY header or implicit TLS takes each socket straight to `connect`.
 *
 * Per message, MAIL, RCPT and DATA (`takeCommand`), the address parse (`_parseAddressCommand`) and every
 * reply written (`writeReply`) skip smtp-server's general paths, with the same checks and results; per
 * connection, so do HELO, EHLO and QUIT (`takeCommand`, HELO's own `handler_HELO`) and the close (no unpipe).
 * Longer than 350 lines because every member that reaches into smtp-server has to be here, in the one
 * module its internals test covers.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection, type SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { parseSimpleAddressCommand } from './address-command.js';
import { upperWord } from './command-verb.js';
import { MessageStream } from './message-stream.js';
import { replyTexts, withEnhanced, type SmtpReply } from './smtp-reply.js';
import { newSessionId } from './session-id.js';
import { OpenList, type OpenEntry } from '../runtime/open-list.js';
import { release } from './turn-writes.js';

/** The exact smtp-server release whose internals this module was written against. */
export const SMTP_SERVER_VERSION = '3.21.6';

/**
 * The smtp-server members this module overrides or calls, with their arity (the number of declared
 * parameters) for methods, or 'field' for instance state; the internals test checks each one.
 */
export const SMTP_SERVER_INTERNALS = {
  SMTPServer: { connect: 2, connections: 'field', server: 'field', _closeTimeout: 'field' },
  SMTPConnection: {
    send: 3,
    init: 0,
    close: 0,
    upgrade: 2,
    connectionReady: 1,
    _setListeners: 1,
    _createParser: 0,
    _onCommand: 2,
    _parseAddressCommand: 2,
    _isDisabled: 1,
    handler_MAIL: 2,
    handler_RCPT: 2,
    handler_DATA: 2,
    handler_AUTH: 2,
    handler_HELO: 2,
    handler_EHLO: 2,
    handler_QUIT: 2,
    _onClose: 0,
    _whenWritable: 1,
    _resetSession: 0,
    session: 'field',
    _server: 'field',
    _parser: 'field',
    _dataStream: 'field',
    _handlerPending: 'field',
    _nextHandler: 'field',
    hostNameAppearsAs: 'field',
    openingCommand: 'field',
    clientHostname: 'field',
    name: 'field',
    _ready: 'field',
    _upgrading: 'field',
    _socket: 'field',
    _closing: 'field',
    _xClient: 'field',
    _xForward: 'field',
  },
  SMTPStream: {
    _write: 3,
    _commandTooLong: 0,
    _remainder: 'field',
    _maxCommandLength: 'field',
    oncommand: 2,
    startDataMode: 1,
    _feedDataStream: 2,
    _countDataBytes: 1,
    _endDataMode: 3,
    _dataMode: 'field',
    _dataStream: 'field',
    _maxBytes: 'field',
    dataBytes: 'field',
    isClosed: 'field',
  },
} as const;

/** smtp-server's handlers of the commands AdaptedConnection takes without its general path. */
interface CommandHandlers {
  handler_MAIL: (this: SMTPConnection, command: Buffer, callback: () => void) => void;
  handler_RCPT: (this: SMTPConnection, command: Buffer, callback: () => void) => void;
  handler_DATA: (this: SMTPConnection, command: Buffer, callback: () => void) => void;
  handler_AUTH: (this: SMTPConnection, command: Buffer, callback: () => void) => void;
  handler_HELO: (this: SMTPConnection, command: Buffer, callback: () => void) => void;
  handler_EHLO: (this: SMTPConnection, command: Buffer, callback: () => void) => void;
  handler_QUIT: (this: SMTPConnection, command: Buffer, callback: () => void) => void;
}

/** The handler takeCommand calls for `name` (upper case), when it is one of the commands it takes. */
function handlerOf(handlers: CommandHandlers, name: string): CommandHandlers[keyof CommandHandlers] | undefined {
  switch (name) {
    case 'MAIL':
      return handlers.handler_MAIL;
    case 'RCPT':
      return handlers.handler_RCPT;
    case 'DATA':
      return handlers.handler_DATA;
    case 'HELO':
      return handlers.handler_HELO;
    case 'EHLO':
      return handlers.handler_EHLO;
    case 'QUIT':
      return handlers.handler_QUIT;
    default:
      return undefined;
  }
}

/** Un-stuffs one message's DATA chunk by chunk; `rest` (the input after the end-of-data line) ends it. */
export interface DataDecoding {
  push(chunk: Buffer): { data: Buffer; rest?: Buffer };
}

/** How an adapted connection departs from smtp-server's defaults. */
export interface Adaptation {
  /** Greet as soon as onConnect has answered, not after smtp-server's fixed 100 ms early-talker pause. */
  greetAtOnce: boolean;
  /** Decodes DATA instead of smtp-server's own decoder. */
  decoder?: () => DataDecoding;
  /**
   * Once the server has closed the session (after QUIT's 221, a 421, a refusal) and the last reply is
   * with the kernel, close the socket instead of half-closing it and waiting up to 5 s for the client.
   */
  closeAtOnce?: boolean;
}

const SMTP_SERVER_DEFAULTS: Adaptation = { greetAtOnce: false };

/**
 * The adapted connection of a session, kept on the session itself: a WeakMap's entry held each closed
 * connection through the young generation's collections (their old-to-new pointers into its values
 * are roots to a scavenge), so every connection was promoted (see runtime/open-list.ts).
 */
const CONNECTION = Symbol('adapted connection');

interface AdaptedSession extends SMTPServerSession {
  [CONNECTION]?: AdaptedConnection;
}

function connectionOf(session: SMTPServerSession): AdaptedConnection | undefined {
  return (session as AdaptedSession)[CONNECTION];
}

/** XCLIENT or XFORWARD details of a server that takes neither command: empty, and refusing to be written. */
class NoProxyDetails extends Map<string, string | number | false> {
  override set(): never {
    throw new TypeError('XCLIENT/XFORWARD details are not kept: the server does not take the command');
  }

  override delete(): never {
    throw new TypeError('XCLIENT/XFORWARD details are not kept: the server does not take the command');
  }

  override clear(): never {
    throw new TypeError('XCLIENT/XFORWARD details are not kept: the server does not take the command');
  }
}

const NO_PROXY_DETAILS = new NoProxyDetails();

/** What a handler's callback gets for a refusal: smtp-server reads only `responseCode` from it, the reply written is the answer. */
function refusalFor(r: SmtpReply): Error {
  return Object.assign(new Error(replyTexts(r).join(' / ')), { responseCode: r.code });
}

/**
 * Answers the command a handler (onConnect, onMailFrom, onRcptTo, onData) was called for with `reply`,
 * closing the connection after it when `close` is set: the one reply smtp-server writes for that
 * command when `callback` runs is this reply, and no other reply is touched.
 */
export function answer(session: SMTPServerSession, reply: SmtpReply, close: boolean, callback: (err?: Error | null) => void): void {
  const connection = connectionOf(session);
  if (connection) connection.answer(reply, close, callback);
  else callback(reply.code >= 400 ? refusalFor(reply) : null);
}

/** Writes a reply now, outside any command (time-outs, shutdown), and optionally closes. */
export function sendNow(session: SMTPServerSession, reply: SmtpReply, close: boolean): void {
  connectionOf(session)?.writeReply(reply, close);
}

/**
 * Writes `teaser` as the opening line of the greeting (`220-teaser`), then waits `ms` for the client
 * to stay silent: resolves true when it did, false as soon as it sends anything or goes away. What it
 * sent is not answered; the caller answers onConnect (the greeting, or a refusal that closes).
 */
export function pauseGreeting(session: SMTPServerSession, teaser: string, ms: number): Promise<boolean> {
  const connection = connectionOf(session);
  return connection ? connection.pauseGreeting(teaser, ms) : Promise.resolve(true);
}

/** smtp-server's test for what may not appear in a reply line (its sasl.js CONTROL_CHARS). */
// eslint-disable-next-line no-control-regex
const CONTROL_CHAR = /[\x00-\x1F\x7F-\x9F]/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\x00-\x1F\x7F-\x9F]/g;

/** A reply line's text as smtp-server writes it: each control character a space, so no text can split the reply. */
function sanitized(text: string): string {
  return CONTROL_CHAR.test(text) ? text.replace(CONTROL_CHARS, ' ') : text;
}

/** `r` as smtp-server's send writes the lines `replyTexts(r)`, without the final CRLF. */
function payloadOf(r: SmtpReply): string {
  const { code, enhanced, lines } = r;
  if (lines.length <= 1) return `${code} ${sanitized(withEnhanced(enhanced, lines[0] ?? ''))}`;
  return replyTexts(r)
    .map((text, i) => `${code}${i < lines.length - 1 ? '-' : ' '}${sanitized(text)}`)
    .join('\r\n');
}

/** One client connection of an AdaptedSmtpServer; subclasses shape it through the protected hooks. */
export class AdaptedConnection extends SMTPConnection {
  /** The handler's answer while its callback runs: the reply smtp-server writes then is the answer. */
  private answering: SmtpReply | undefined;
  private closeAfterAnswer = false;
  /** While the greeting is held back (`pauseGreeting`): ends the pause, the client having talked. */
  private talkedDuringPause: (() => void) | undefined;
  /** Its place in its server's open connections (OpenConnections). */
  openEntry: OpenEntry<AdaptedConnection> | undefined;
  /** The command line takeCommand handed its handler, and its text, for the handler's address parse. */
  private decoded: Buffer | undefined;
  private decodedText = '';

  constructor(
    server: AdaptedSmtpServer,
    socket: net.Socket | tls.TLSSocket,
    options: SMTPConnectionOptions | null,
  ) {
    super(server, socket, options);
    // smtp-server fills these only for a client that its useXClient / useXForward option trusts: with
    // the option off they stay empty for good, and one empty Map serves every connection instead of
    // two that each connection holds for its life.
    if (!server.options.useXClient) this._xClient = NO_PROXY_DETAILS;
    if (!server.options.useXForward) this._xForward = NO_PROXY_DETAILS;
    // Not enumerable: whatever copies or prints the session's fields never meets the connection.
    Object.defineProperty(this.session, CONNECTION, { value: this });
  }

  /** How this connection departs from smtp-server's defaults; a getter, as smtp-server's constructor already needs it. */
  protected get adaptation(): Adaptation {
    return SMTP_SERVER_DEFAULTS;
  }

  /** smtp-server writes every reply through here. */
  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    const a = this.answering;
    if (a === undefined) return this.writeOwnReply(code, data, context);
    this.answering = undefined;
    this.writeReply(a, this.closeAfterAnswer);
  }

  /** Writes `r` exactly (smtp-server adds no enhanced code), then closes if asked; a 421 always closes. */
  writeReply(r: SmtpReply, close: boolean): void {
    this.writePayload(r.code, payloadOf(r));
    if (close) this.close();
  }

  /**
   * smtp-server's send for a reply whose lines are given whole (no enhanced code of its own), with the
   * same checks and effects: the session's `error`, no write while a TLS handshake is under way or to a
   * socket that is not open, the debug line, and a 421 that closes. Its send maps, sanitises and joins
   * the lines through two arrays and a closure per reply.
   */
  private writePayload(code: number, payload: string): void {
    if (code >= 400) this.session.error = payload;
    const socket = this._socket;
    if (!this._upgrading && !socket.destroyed && socket.readyState === 'open') {
      socket.write(`${payload}\r\n`);
      const user = (this.session.user && this.session.user.username) || this.session.user;
      this._server.logger.debug({ tnx: 'send', cid: this.id, user }, 'S:', payload);
    }
    if (code === 421) this.close();
  }

  /** See `answer`. */
  answer(reply: SmtpReply, close: boolean, callback: (err?: Error | null) => void): void {
    const stream = this._dataStream;
    // smtp-server answers DATA once the message stream has ended (draining it if nobody reads it):
    // wait for that here, so that the reply written when the callback runs is the one for DATA.
    if (stream && stream.readable) {
      stream.once('end', () => this.answer(reply, close, callback));
      if (stream.readableFlowing === null) stream.resume();
      return;
    }
    this.answering = reply;
    this.closeAfterAnswer = close;
    try {
      callback(reply.code >= 400 ? refusalFor(reply) : null);
    } finally {
      this.answering = undefined;
    }
  }

  /** See `pauseGreeting`. */
  pauseGreeting(teaser: string, ms: number): Promise<boolean> {
    const socket = this._socket;
    return new Promise((resolve) => {
      const end = (quiet: boolean): void => {
        clearTimeout(timer);
        socket.off('data', talked);
        socket.off('close', talked);
        this.talkedDuringPause = undefined;
        resolve(quiet);
      };
      const talked = (): void => end(false);
      const timer = setTimeout(() => end(true), ms);
      this.talkedDuringPause = talked;
      socket.on('data', talked);
      socket.once('close', talked);
      socket.write(`220-${teaser}\r\n`);
    });
  }

  /** One of smtp-server's own replies (syntax, order, size, time-outs, a handler error given without an answer). */
  protected writeOwnReply(code: number, data: string | string[] | null | undefined, context: string | false | undefined): void {
    super.send(code, data, context);
  }

  /**
   * A complete command line was read (`line`: its bytes as Latin-1, one character each; `ascii`: every
   * byte is below 0x80); a reply refuses it before smtp-server takes it (a 421 or a 554 then closes the
   * connection). `ready`: the greeting was sent and no TLS handshake is under way.
   */
  protected commandRead(_line: string, _ascii: boolean, _ready: boolean): SmtpReply | undefined {
    return undefined;
  }

  /** smtp-server forgot the transaction: RSET, HELO/EHLO, STARTTLS, the end of DATA (and once as the connection gets ready). */
  protected transactionReset(): void {}

  /** The connection is closing or closed (called more than once). */
  protected ending(): void {}

  /** The client is waiting on the server: a handler is working, or the message was read and is not yet answered. */
  protected get owesReply(): boolean {
    return this._handlerPending || (!!this._dataStream && !!this._parser && !this._parser._dataMode);
  }

  /** The last reply opened the DATA phase: the client is sending the message. */
  protected get inData(): boolean {
    return !!this._parser && this._parser._dataMode;
  }

  override init(): void {
    if (this.adaptation.greetAtOnce) this._setListeners(() => this.connectionReady());
    else super.init();
  }

  override _createParser(): SMTPStream {
    const decoder = this.adaptation.decoder;
    if (!decoder) return super._createParser();
    // smtp-server's own wiring of its parser, with the adapted decoder; the parser calls back its
    // connection through methods and a listener shared by all parsers, not two closures each.
    const parser = new DecodingSmtpStream(this, decoder, { maxCommandLength: this._server.options.maxCommandLength });
    parser.on('error', parserFailed);
    return parser;
  }

  override _onCommand(command: Buffer, callback?: () => void): void {
    // Swallowed, and the parser left waiting: the pause's end answers a client that talked first.
    if (this.talkedDuringPause) return this.talkedDuringPause();
    // The line is made a string once: as Latin-1 for the hook, and the same string serves as its UTF-8
    // text when every byte is ASCII (as a command line's nearly always is); it was decoded three times.
    const latin1 = command.toString('latin1');
    const ascii = isAscii(latin1);
    const refusal = this.commandRead(latin1, ascii, this._ready && !this._upgrading);
    if (!refusal) return this.takeCommand(command, ascii ? latin1 : command.toString(), callback);
    this.writeReply(refusal, refusal.code === 554);
    if (refusal.code === 421 || refusal.code === 554) return;
    setImmediate(() => this._whenWritable(callback ?? (() => undefined)));
  }

  /**
   * smtp-server's _onCommand, which MAIL, RCPT and DATA (past HELO/EHLO), and HELO, EHLO and QUIT, the
   * commands that open and end a connection, take without its general path when the session is ready, no
   * TLS upgrade, shutdown, AUTH exchange or LMTP is under way, and AUTH is not offered: for them that
   * path checks nothing more (HELO and EHLO it notes as the opening command), but turns the line into a
   * string three times and builds a regular expression match, a redaction object and two arrays per
   * command. The handler is called as smtp-server calls it; any other command or state goes to smtp-server.
   */
  private takeCommand(command: Buffer, line: string, callback: (() => void) | undefined): void {
    const space = line.indexOf(' ');
    const name = upperWord(line, 0, space < 0 ? line.length : space);
    const server = this._server;
    // Each handler by name, and what smtp-server's _isSupported asks (a handler, not disabled) asked
    // directly: its _getHandler builds the key ('handler_' + name) per call, twice a command, and a
    // property looked up by a string made anew cost a string-table probe and a megamorphic load.
    const handlers = this as unknown as CommandHandlers;
    const handler = handlerOf(handlers, name);
    const opening = name === 'HELO' || name === 'EHLO';
    if (
      typeof handler !== 'function' ||
      this._upgrading ||
      server._closeTimeout ||
      !this._ready ||
      this._nextHandler ||
      server.options.lmtp ||
      (!this.hostNameAppearsAs && !opening && name !== 'QUIT') ||
      this._isDisabled(name) ||
      (!this.session.user && typeof handlers.handler_AUTH === 'function' && !this._isDisabled('AUTH'))
    ) {
      return super._onCommand(command, callback);
    }
    const user = (this.session.user && this.session.user.username) || this.session.user;
    server.logger.debug({ tnx: 'command', cid: this.id, command: name, user }, 'C:', line);
    if (opening) this.openingCommand = name;
    const next = callback ?? ((): boolean => false);
    let handlerDone = false;
    const handlerCallback = (): void => {
      handlerDone = true;
      this._handlerPending = false;
      this._whenWritable(next);
    };
    this._handlerPending = true;
    this.decoded = command;
    this.decodedText = line;
    try {
      handler.call(this, command, handlerCallback);
    } catch (err) {
      // As smtp-server: a handler bug is logged and answered, never thrown into the socket's pipe.
      server.logger.error({ err, tnx: 'command', cid: this.id, command: name }, '%s Failed to process %s command: %s', this.id, name, (err as Error).message);
      if (!handlerDone) {
        this.send(451, 'Error: internal server error');
        handlerCallback();
      }
    } finally {
      // The line is a view of the socket's chunk: not held past its handler's call.
      this.decoded = undefined;
    }
  }

  /**
   * smtp-server's HELO for a line of its usual shape (`HELO name`, one space, the name printable ASCII of
   * at most MAX_HELO_NAME characters): the same name kept, reset and reply, without splitting the line on
   * a regular expression and formatting the reply with another and a closure. Any other line, or one
   * that did not come through takeCommand, goes to smtp-server's handler, which answers it the same.
   */
  override handler_HELO(command: Buffer, callback: () => void): void {
    const name = command === this.decoded ? plainHeloName(this.decodedText) : undefined;
    if (name === undefined) return super.handler_HELO(command, callback);
    this.hostNameAppearsAs = name.toLowerCase();
    this._resetSession();
    this.send(250, heloReply(this._server.options.heloResponse || DEFAULT_HELO_RESPONSE, this.name, this.clientHostname), false);
    callback();
  }

  /** MAIL FROM and RCPT TO in their common shape parsed without smtp-server's general path, to the same result. */
  override _parseAddressCommand(rawName: string, rawCommand: Buffer | string): ReturnType<SMTPConnection['_parseAddressCommand']> {
    const text = rawCommand === this.decoded ? this.decodedText : rawCommand.toString();
    return parseSimpleAddressCommand(rawName, text) ?? super._parseAddressCommand(rawName, rawCommand);
  }

  override _resetSession(): void {
    super._resetSession();
    this.transactionReset();
  }

  /** STARTTLS's 220, written in this turn, goes on the plain socket before TLS takes its descriptor over. */
  override upgrade(callback: () => void, secureCallback?: () => void): void {
    release(this._socket);
    super.upgrade(callback, secureCallback);
  }

  override close(): void {
    this.ending();
    const socket = this._socket;
    // The last reply (QUIT's, a 421) was written in this turn and is held to its end (turn-writes.ts).
    release(socket);
    // A client that closes with SO_LINGER 0 (Postfix's smtp-source, for one) resets the half-closed
    // socket, and Node reports that reset as an ECONNRESET error whose stack it builds: per connection,
    // more CPU than the rest of its close. Closed first, the socket takes the reset in the kernel (and
    // smtp-server, finding it destroyed, neither half-closes it nor resumes it).
    if (this.adaptation.closeAtOnce && !this._upgrading && !socket.destroyed && socket.writableLength === 0) socket.destroy();
    if (!socket.destroyed || this._upgrading) return super.close();
    // smtp-server's close for a socket already destroyed, which has nothing to end or resume: without
    // the 5 s timer it arms to destroy the socket, made and cleared again per connection for nothing.
    this._server.connections.delete(this);
    if (this._closing) return;
    this._closing = true;
    // Not unpiped (see _onClose): a destroyed socket reads nothing more, and a closed parser takes nothing.
    if (this._parser) this._parser.isClosed = true;
  }

  override _onClose(): void {
    this.ending();
    // The socket is destroyed (its 'close' event brought us here), so the parser is closed and let go
    // without smtp-server's unpipe, which per connection emitted 'unpipe' and took six listeners off
    // a socket that reads nothing more; a parser closed ignores anything still buffered.
    const parser = this._parser;
    if (parser && this._socket.destroyed) {
      parser.isClosed = true;
      this._parser = false;
    }
    super._onClose();
  }
}

/** smtp-server's longest HELO name (its MAX_HELO_HOSTNAME_LENGTH) and its HELO reply when the server's options give none. */
const MAX_HELO_NAME = 300;
const DEFAULT_HELO_RESPONSE = '%s Nice to meet you, %s';

/**
 * The name of a HELO line `HELO name` (the verb in any case, one space, a name of printable ASCII without
 * spaces, at most MAX_HELO_NAME long): for such a line smtp-server's split, trim and syntax checks find
 * that same name and let it pass. Undefined for any other line.
 */
function plainHeloName(line: string): string | undefined {
  if (line.length <= 5 || line.length - 5 > MAX_HELO_NAME || line.charCodeAt(4) !== 0x20) return undefined;
  for (let i = 5; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return undefined;
  }
  return line.slice(5);
}

/** smtp-server's HELO reply: each `%s` of `format` in turn is the server's name, then the client's host name, then empty. */
function heloReply(format: string, server: string, client: string | false): string {
  let reply = '';
  let from = 0;
  let n = 0;
  for (let at = format.indexOf('%s'); at >= 0; at = format.indexOf('%s', from)) {
    reply += format.slice(from, at) + ((n === 0 ? server : n === 1 ? client : '') || '');
    n += 1;
    from = at + 2;
  }
  return reply + format.slice(from);
}

/** Whether every character of `text` is ASCII: its Latin-1 and UTF-8 decodings are then the same string. */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** An SMTPServer whose connections are AdaptedConnections, built by `connection`; sockets may be handed to it with `connect`. */
export class AdaptedSmtpServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    private readonly connection: (server: AdaptedSmtpServer, socket: net.Socket | tls.TLSSocket, options: SMTPConnectionOptions | null) => AdaptedConnection = (
      server,
      socket,
      options,
    ) => new AdaptedConnection(server, socket, options),
  ) {
    super(options);
    this.connections = new OpenConnections() as unknown as Set<SMTPConnection>;
    // smtp-server's own accept path guards each socket for a PROXY header or an implicit TLS handshake
    // and draws a session ID from `randomBytes`, one turn of the event loop later; a plain listener
    // needs none of that, and connect() draws the ID from the shared random block.
    if (!options.secure && !options.useProxy && !options.ignoredHosts) {
      this.server.removeAllListeners('connection');
      this.server.on('connection', (socket: net.Socket) => this.connect(socket));
    }
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: SMTPConnectionOptions | null): void {
    // The caller's own options object (smtp-server's and the edge's are made per connection) takes the
    // ID: a copy of it with one more key took V8's slow path at every connection.
    const options = socketOptions ?? {};
    options.id ??= newSessionId();
    const connection = this.connection(this, socket, options);
    this.connections.add(connection);
    connection.on('error', relayError);
    connection.on('connect', relayConnect);
    connection.init();
  }
}

/**
 * smtp-server's set of open connections as a list (runtime/open-list.ts: its Set held each closed
 * connection through the scavenges), with the members of a Set that smtp-server uses (add, delete, size,
 * forEach; its internals test checks that no other is) and iteration. Every connection of an
 * AdaptedSmtpServer is an AdaptedConnection (connect).
 */
class OpenConnections {
  private readonly list = new OpenList<AdaptedConnection>();

  get size(): number {
    return this.list.size;
  }

  add(connection: AdaptedConnection): this {
    connection.openEntry ??= this.list.add(connection);
    return this;
  }

  delete(connection: AdaptedConnection): boolean {
    const entry = connection.openEntry;
    if (!entry) return false;
    connection.openEntry = undefined;
    this.list.remove(entry);
    return true;
  }

  forEach(visit: (connection: AdaptedConnection) => void): void {
    for (const connection of this.list) visit(connection);
  }

  [Symbol.iterator](): Iterator<AdaptedConnection> {
    return this.list[Symbol.iterator]();
  }
}

/** A connection's error, passed on by its server with its session so that the log line carries the session ID; `this` is the connection, one function for all. */
function relayError(this: AdaptedConnection, err: Error): void {
  this._server.emit('error', err, this.session);
}

function relayConnect(this: AdaptedConnection, data: unknown): void {
  this._server.emit('connect', data);
}

/** How many pipelined commands smtp-server's parser runs in one turn before it yields (its MAX_SYNC_COMMANDS). */
const MAX_SYNC_COMMANDS = 100;
const LF = 0x0a;
const CR = 0x0d;

/** A parser's error, answered as smtp-server answers it; `this` is the parser, one function for all. */
function parserFailed(this: DecodingSmtpStream, err: Error): void {
  this.connection.send(421, `Error: ${err.message}`);
}

/**
 * smtp-server's input parser with another DATA decoder: each input chunk of DATA becomes what the
 * decoder makes of it, pushed into the message stream (a MessageStream, not smtp-server's
 * PassThrough), the next chunk being taken off the socket only once the reader wants more, whatever
 * the bytes are. Command lines are read as smtp-server reads them (`_write`), off the chunk's bytes.
 */
export class DecodingSmtpStream extends SMTPStream {
  private decoder: DataDecoding;

  constructor(
    readonly connection: AdaptedConnection,
    private readonly newDecoder: () => DataDecoding,
    options: ConstructorParameters<typeof SMTPStream>[0],
  ) {
    super(options);
    this.decoder = newDecoder();
  }

  override oncommand(command: Buffer, callback?: () => void): void {
    this.connection._onCommand(command, callback);
  }

  /**
   * smtp-server's startDataMode with a MessageStream for its PassThrough. `_atDataStart` is left
   * alone: only smtp-server's own decoder reads it.
   */
  override startDataMode(maxBytes?: number | string | null): SMTPServerDataStream {
    this.decoder = this.newDecoder();
    this._dataMode = true;
    this._maxBytes = (maxBytes && Number(maxBytes)) || Infinity;
    this.dataBytes = 0;
    const stream = new MessageStream();
    // What onData gets is typed as smtp-server's PassThrough; the edge reads it as a Readable.
    this._dataStream = stream as unknown as SMTPServerDataStream;
    return this._dataStream;
  }

  /**
   * smtp-server's _write, with the same lines, checks, order and turns: a line ends at LF (a CR before
   * it dropped), one longer than the limit (or a partial line longer, kept for the next chunk) is the
   * parser's error, each line waits for its command's callback, a line read while a command runs
   * waits for it, the DATA mode takes the bytes after its line, and a turn runs at most
   * MAX_SYNC_COMMANDS commands. smtp-server turns each chunk into a string, runs a regular expression
   * for each line and copies each line back into a buffer; here a line is a view of the chunk, and
   * only a partial line left over is kept as smtp-server keeps it (`_remainder`, a binary string).
   */
  override _write(chunk: Buffer, encoding: BufferEncoding, next: (err?: Error | null) => void): void {
    if (!chunk || !chunk.length) return next();
    let called = false;
    const done = (err?: Error | null): void => {
      if (called) return;
      called = true;
      next(err);
    };
    if (this.isClosed) return done();
    if (this._dataMode) return this._feedDataStream(chunk, done);
    const data = this._remainder === '' ? chunk : Buffer.concat([Buffer.from(this._remainder, 'latin1'), chunk]);
    let pos = 0;
    let busy = false;
    let again = false;
    let processed = 0;
    const readLine = (): void => {
      // A command's callback run inside oncommand: the loop below goes on instead of recursing.
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        for (;;) {
          again = false;
          if (this.isClosed) return done();
          if (this._dataMode) {
            this._remainder = '';
            return this._write(data.subarray(pos), encoding, done);
          }
          const nl = data.indexOf(LF, pos);
          if (nl < 0) {
            this._remainder = pos < data.length ? data.toString('latin1', pos) : '';
            return this._remainder.length > this._maxCommandLength ? done(this._commandTooLong()) : done();
          }
          const line = data.subarray(pos, nl > pos && data[nl - 1] === CR ? nl - 1 : nl);
          pos = nl + 1;
          if (line.length > this._maxCommandLength) return done(this._commandTooLong());
          this.oncommand(line, readLine);
          if (!again) return;
          if (++processed >= MAX_SYNC_COMMANDS) {
            processed = 0;
            setImmediate(readLine);
            return;
          }
        }
      } finally {
        busy = false;
      }
    };
    readLine();
  }

  override _feedDataStream(chunk: Buffer, done: (err?: Error | null) => void): void {
    const { data, rest } = this.decoder.push(chunk);
    this._countDataBytes(data.length);
    if (rest !== undefined) return this._endDataMode(data.length ? data : false, rest, done);
    const stream = this._dataStream as unknown as MessageStream | null;
    if (!data.length || !stream?.writable) return done();
    stream.feed(data, done);
  }
}
