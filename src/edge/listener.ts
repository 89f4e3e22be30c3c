/**
 * One configured listener: its own TCP server (connection limits, PROXY protocol), one smtp-server
 * instance for the SMTP dialogue, and an EdgeSession per connection.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { ListenerConfig } from '../config/schema.js';
import { IpList } from '../net/ip-list.js';
import { normalizeIp } from '../net/ip.js';
import { boundAddress } from '../net/bound.js';
import { parseEndpoint } from '../net/endpoint.js';
import type { ProtocolLog } from '../observability/protocol-log.js';
import { EdgeSession, type Generation, type Outcome, type SessionServices } from './edge-session.js';
import { answer, sendNow } from '../net/smtp-server-adapter.js';
import { EdgeSmtpServer } from './edge-smtp-server.js';
import { answerHealthCheck, isHealthCheck } from './health-check.js';
import { ProxyProtocolError, readProxyHeader, type ProxyInfo } from './proxy-protocol.js';
import { formatReply, reply, type SmtpReply } from '../net/smtp-reply.js';
import { OpenList } from '../runtime/open-list.js';
import { holdWritesPerTurn } from '../net/turn-writes.js';
import { edgeOf, keepSession, keepSocket, openSocket, takeSession, takeSocket, type ClientSlot } from './open-records.js';

/** What a listener needs from the process around it. */
export interface ListenerServices extends SessionServices {
  /** The rule set new sessions start under (sessions keep the one they started with). */
  generation(): Generation;
  protocolLog?: ProtocolLog;
}

/** How long a balancer has to send its PROXY header. */
const PROXY_HEADER_TIMEOUT_MS = 5000;
/** How long a refused client may keep its side open after the refusal was written. */
const REFUSAL_LINGER_MS = 2000;

const LOCAL_ERROR = reply(451, '4.3.0', 'Local error in processing');
const UNAVAILABLE = reply(421, '4.3.0', 'Service not available, closing channel');

/** Client socket errors end that connection only; smtp-server reports those of a session. */
function ignoreSocketError(): void {}

/** A running listener. */
export class EdgeListener {
  private readonly sessions = new OpenList<SMTPServerSession>();
  private readonly perClient = new Map<string, number>();
  /** The balancer each PROXY-reported client (`address port`) came through, until its session starts. */
  private readonly proxiedBy = new Map<string, string>();
  private readonly sockets = new OpenList<net.Socket>();
  /**
   * A socket's `close` listener, one for all sockets (`this` is the socket): no closure or `once`
   * wrapper per connection. It also ends the socket's session, if one started: a third `close`
   * listener would grow the socket's listener array to Node's next capacity (19 slots).
   */
  private readonly forgetSocket: (this: net.Socket) => void;
  /** A session's end (`finish`, `end`): one function for all sockets, as forgetSocket. */
  private readonly sessionEnded: (this: net.Socket) => void;
  private readonly smtp: EdgeSmtpServer;
  private readonly balancers: IpList | undefined;
  private readonly tcp: net.Server;
  /**
   * The address every connection is accepted on, when the listener is bound to one (not a wildcard):
   * smtp-server then takes it from here rather than asking the kernel (getsockname) per connection.
   */
  private local: { address: string; port: number } | undefined;

  private constructor(
    readonly config: ListenerConfig,
    private readonly hostname: string,
    private readonly services: ListenerServices,
  ) {
    this.balancers = config.proxyProtocol ? IpList.parse(config.proxyProtocol.from) : undefined;
    const sockets = this.sockets;
    const release = (slot: ClientSlot | undefined): void => {
      if (!slot || slot.released) return;
      slot.released = true;
      const left = (this.perClient.get(slot.client) ?? 1) - 1;
      if (left > 0) this.perClient.set(slot.client, left);
      else this.perClient.delete(slot.client);
    };
    this.sessionEnded = function (this: net.Socket) {
      release(openSocket(this)?.slot);
    };
    const sessionClosed = (slot: ClientSlot): void => {
      release(slot);
      this.services.metrics.sessionClosed(config.name);
      if (slot.proxiedKey !== undefined) this.proxiedBy.delete(slot.proxiedKey);
    };
    this.forgetSocket = function (this: net.Socket) {
      const open = takeSocket(this);
      if (open === undefined) return;
      sockets.remove(open.entry);
      if (open.slot !== undefined) sessionClosed(open.slot);
    };
    this.smtp = this.createSmtpServer(hostname);
    // Socket errors of a client connection (a reset mid-DATA) end that session only.
    this.smtp.on('error', (err: Error, session?: SMTPServerSession) =>
      this.services.logger.info({ listener: config.name, ...(session ? { session: session.id } : {}), err: err.message }, 'client connection error'),
    );
    this.tcp = net.createServer((socket) => {
      try {
        this.accept(socket);
      } catch (err) {
        this.setupFailed(socket, err);
      }
    });
  }

  /** Opens the listener on its configured address (port 0 allowed). */
  static async start(config: ListenerConfig, hostname: string, services: ListenerServices): Promise<EdgeListener> {
    const l = new EdgeListener(config, hostname, services);
    const { host, port } = parseEndpoint(config.listen, `listeners[${config.name}].listen`);
    l.tcp.listen(port, host);
    const bound = await boundAddress(l.tcp);
    const boundHost = normalizeIp(bound.address);
    if (boundHost !== '0.0.0.0' && boundHost !== '::') l.local = { address: bound.address, port: bound.port };
    // Once bound, accept failures (EMFILE when out of file descriptors) come here; the listener stays up.
    l.tcp.on('error', (err: Error) => services.logger.error({ listener: config.name, err: err.message }, 'listener error'));
    return l;
  }

  /** The address actually bound. */
  get address(): { host: string; port: number } {
    const a = this.tcp.address() as net.AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Open client connections. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Stops accepting; resolves at once (sessions in flight go on). */
  stopAccepting(): void {
    this.tcp.close();
  }

  /** Answers every remaining session `421 4.3.2 Service shutting down` and closes it. */
  shutDownSessions(): void {
    for (const session of this.sessions) sendNow(session, reply(421, '4.3.2', 'Service shutting down'), true);
  }

  /** Closes every socket now. */
  destroyAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /**
   * A socket from a configured balancer waits for its PROXY header (asynchronously); any other starts
   * its session in this turn of the event loop, with no promise of its own.
   */
  private accept(socket: net.Socket): void {
    socket.on('error', ignoreSocketError);
    holdWritesPerTurn(socket);
    // A client that reset before we got here has no address left to judge: nothing to answer.
    if (socket.remoteAddress === undefined) return void socket.destroy();
    const peer = normalizeIp(socket.remoteAddress);
    if (this.sockets.size >= this.config.limits.maxConnections) {
      return this.refuse(socket, reply(421, '4.3.2', 'Too many connections, try again later'));
    }
    keepSocket(socket, { entry: this.sockets.add(socket), slot: undefined });
    socket.on('close', this.forgetSocket);
    if (this.balancers?.match(peer) === undefined) return this.startSession(socket, peer, peer, socket.remotePort ?? 0);
    this.acceptProxied(socket, peer).catch((err: unknown) => this.setupFailed(socket, err));
  }

  private async acceptProxied(socket: net.Socket, peer: string): Promise<void> {
    let info: ProxyInfo;
    try {
      info = await readProxyHeader(socket, PROXY_HEADER_TIMEOUT_MS);
    } catch (err) {
      const r = err instanceof ProxyProtocolError ? err.reply : reply(421, '4.7.0', 'PROXY header expected');
      this.services.logger.info({ listener: this.config.name, peer, err: (err as Error).message }, 'PROXY header refused');
      return this.refuse(socket, r);
    }
    // Before any policy: a balancer's check must be answered even where the listener denies its address.
    if (isHealthCheck(info, socket)) {
      this.services.metrics.healthCheck(this.config.name);
      return answerHealthCheck(socket, this.hostname);
    }
    if (info.local) return this.startSession(socket, peer, peer, socket.remotePort ?? 0);
    this.startSession(socket, peer, normalizeIp(info.sourceAddress), info.sourcePort);
  }

  private setupFailed(socket: net.Socket, err: unknown): void {
    this.services.logger.error({ listener: this.config.name, err: (err as Error).message }, 'connection setup failed');
    socket.destroy();
  }

  /** Per-client limit, the session's counters, then the SMTP session for `client` (the PROXY-reported address, or the peer's). */
  private startSession(socket: net.Socket, peer: string, client: string, clientPort: number): void {
    const count = (this.perClient.get(client) ?? 0) + 1;
    if (count > this.config.limits.maxConnectionsPerClient) {
      return this.refuse(socket, reply(421, '4.7.0', 'Too many connections from your address, try again later'));
    }
    this.perClient.set(client, count);
    this.services.metrics.sessionOpened(this.config.name);
    const proxiedKey = client === peer ? undefined : `${client} ${clientPort}`;
    this.watchSessionEnd(socket, client, proxiedKey);
    if (socket.destroyed) return;
    if (proxiedKey !== undefined) this.proxiedBy.set(proxiedKey, peer);
    const local = this.local;
    this.smtp.connect(socket, { remoteAddress: client, remotePort: clientPort, localAddress: local?.address, localPort: local?.port });
  }

  /**
   * Gives the client's slot back as soon as its session is over: the edge has finished writing its
   * side (after `221` or a closing `421`) or the client has hung up. A sender reconnects the moment
   * it has read `221`, before the socket's `close` event, so holding the slot until `close` refused
   * senders that never exceeded the limit. The socket itself still counts against `maxConnections`
   * until it is gone. One listener per event, shared by all sockets; the slot is given back once.
   */
  private watchSessionEnd(socket: net.Socket, client: string, proxiedKey: string | undefined): void {
    const open = openSocket(socket);
    if (open) open.slot = { client, proxiedKey, released: false };
    socket.on('finish', this.sessionEnded);
    socket.on('end', this.sessionEnded);
  }

  /** Writes a refusal before any SMTP session exists, then closes. */
  private refuse(socket: net.Socket, r: SmtpReply): void {
    this.services.metrics.reply(r.code);
    socket.end(formatReply(r));
    setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
  }

  private createSmtpServer(hostname: string): EdgeSmtpServer {
    const c = this.config;
    const tls = c.tls ? { key: fs.readFileSync(c.tls.key), cert: fs.readFileSync(c.tls.cert) } : {};
    return new EdgeSmtpServer(
      {
        name: hostname,
        logger: false,
        ...tls,
        disabledCommands: ['AUTH', 'XCLIENT', 'XFORWARD', 'WIZ', 'SHELL', 'KILL', ...(c.tls ? [] : ['STARTTLS'])],
        hideSTARTTLS: !c.tls,
        hideENHANCEDSTATUSCODES: false,
        hideDSN: true,
        hideSMTPUTF8: true,
        hideREQUIRETLS: true,
        size: c.limits.maxMessageSize,
        maxRecipients: c.limits.maxRecipients,
        socketTimeout: c.limits.idleTimeoutMs,
        disableReverseLookup: !c.reverseDns,
        heloResponse: '%s Hello %s',
        onConnect: (session, cb) => this.onConnect(session, cb),
        onMailFrom: (address, session, cb) => {
          const params: { body?: string; size?: number } = {};
          if (session.envelope.bodyType === '8bitmime') params.body = '8BITMIME';
          if (typeof address.args === 'object' && address.args.SIZE) params.size = Number(address.args.SIZE);
          this.respond(session, cb, (s) => s.mailFrom(address.address, params));
        },
        onRcptTo: (address, session, cb) => this.respond(session, cb, (s) => s.rcptTo(address.address)),
        onData: (stream, session, cb) => this.onData(stream, session, cb),
        onClose: (session) => {
          const open = takeSession(session);
          if (open) {
            open.edge.close();
            this.sessions.remove(open.entry);
          }
          this.services.protocolLog?.disconnect(session.id, 'closed');
        },
      },
      {
        command: (session, line) => this.services.protocolLog?.line(session.id, 'in', line),
        reply: (session, r) => {
          this.services.metrics.reply(r.code);
          this.services.protocolLog?.line(session.id, 'out', formatReply(r));
        },
        reset: (session) => edgeOf(session)?.reset(),
        unauthorisedPipelining: (session) => edgeOf(session)?.unauthorisedPipelining(),
      },
      { commandMs: c.limits.idleTimeoutMs, sessionMs: c.limits.maxSessionMs },
    );
  }

  private onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    this.services.protocolLog?.connect(session.id, session.remoteAddress, this.config.name);
    let edge: EdgeSession;
    const peer = this.proxiedBy.size > 0 ? this.takeBalancer(session) : undefined;
    try {
      edge = new EdgeSession(this.services.generation(), this.config, session, this.services, peer);
    } catch (err) {
      this.services.logger.error({ listener: this.config.name, err: (err as Error).message }, 'session could not start');
      return answer(session, UNAVAILABLE, true, cb);
    }
    keepSession(session, { entry: this.sessions.add(session), edge });
    // Greeted in this turn unless a check waits (rate limits, the pre-greeting pause).
    let outcome: ReturnType<EdgeSession['admit']>;
    try {
      outcome = edge.admit();
    } catch (err) {
      return this.failed(session, cb, err, 'connection checks failed', UNAVAILABLE, true);
    }
    if (!(outcome instanceof Promise)) return this.greetOrRefuse(session, cb, outcome);
    outcome.then(
      (refused) => this.greetOrRefuse(session, cb, refused),
      (err: unknown) => this.failed(session, cb, err, 'connection checks failed', UNAVAILABLE, true),
    );
  }

  private greetOrRefuse(session: SMTPServerSession, cb: (err?: Error | null) => void, refused: Outcome | undefined): void {
    if (refused) answer(session, refused.reply, true, cb);
    else cb();
  }

  /** The balancer a PROXY-reported client came through, forgotten once its session has it. */
  private takeBalancer(session: SMTPServerSession): string | undefined {
    const key = `${session.remoteAddress} ${session.remotePort}`;
    const peer = this.proxiedBy.get(key);
    this.proxiedBy.delete(key);
    return peer;
  }

  /** Answers a command with its step's outcome: in this turn when the step waited for nothing, else once its promise settles. */
  private respond(session: SMTPServerSession, cb: (err?: Error | null) => void, step: (s: EdgeSession) => Outcome | Promise<Outcome>): void {
    const edge = edgeOf(session);
    if (!edge) return answer(session, reply(421, '4.3.0', 'Session not available'), false, cb);
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = step(edge);
    } catch (err) {
      return this.failed(session, cb, err, 'command failed', LOCAL_ERROR);
    }
    if (!(outcome instanceof Promise)) return answer(session, outcome.reply, outcome.close === true, cb);
    outcome.then(
      (o) => answer(session, o.reply, o.close === true, cb),
      (err: unknown) => this.failed(session, cb, err, 'command failed', LOCAL_ERROR),
    );
  }

  /** A step that threw, logged as `what`: the client gets `r`, a 4xx, so that it tries again. */
  private failed(session: SMTPServerSession, cb: (err?: Error | null) => void, err: unknown, what: string, r: SmtpReply, close = false): void {
    this.services.logger.error({ session: session.id, err: (err as Error).message }, what);
    answer(session, r, close, cb);
  }

  private onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const edge = edgeOf(session);
    if (!edge) return answer(session, reply(451, '4.3.0', 'Session not available'), false, cb);
    edge.data(
      stream,
      (r) => sendNow(session, r, true),
      (o) => answer(session, o.reply, o.close === true, cb),
      (err) => this.failed(session, cb, err, 'DATA failed', LOCAL_ERROR),
    );
  }
}
