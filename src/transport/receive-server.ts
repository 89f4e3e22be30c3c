import type net from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { boundAddress } from '../net/bound.js';
import { reply, replyTexts, SmtpError, type SmtpReply } from '../net/smtp-reply.js';
import type { IpList } from '../net/ip-list.js';
import { type Adaptation, AdaptedConnection, AdaptedSmtpServer } from '../net/smtp-server-adapter.js';
import type { Clock } from '../runtime/clock.js';
import { rfc5322Date } from './dsn.js';
import { HeaderTap } from './header-tap.js';
import { newQueueId, type QueuedMessage, QueueStorageError, type QueueStore } from './queue-store.js';
import type { Envelope, EnvelopeRecipient } from './types.js';

/** How the engine's SMTP listener is set up. */
export interface ReceiveServerOptions {
  hostname: string;
  host: string;
  port: number;
  /** Only these clients may connect; others get 554 5.7.1. */
  allowFrom: IpList;
  maxMessageSize: number;
  maxRecipients: number;
  store: QueueStore;
  clock: Clock;
  /** Called once a message is on disk and fsynced, just before the 250 is written. */
  onQueued(message: QueuedMessage, reply: string): void;
  /** Called when a client is refused or a message could not be stored. */
  onError(event: { kind: 'refused' | 'storage' | 'connection'; ip: string; detail: string }): void;
}

/** The running listener. */
export interface ReceiveServer {
  address: { host: string; port: number };
  /**
   * Takes an SMTP session on `stream` (one end of an in-memory pair from the same process) exactly as
   * one accepted from a TCP client at the stream's remoteAddress: allowFrom, greeting, XFORWARD,
   * limits and counting alike. After close() it is closed at once, as a connect would be refused.
   */
  accept(stream: Duplex): void;
  /** Stops listening and resolves once every session, TCP or in-process, has ended. */
  close(): Promise<void>;
}

/** A handler's refusal as smtp-server writes it: `responseCode`, then the message (enhanced code and text). */
function refusal(r: SmtpReply): Error {
  return Object.assign(new Error(replyTexts(r).join(' ')), { responseCode: r.code });
}

/** smtp-server's own close time-out (CLOSE_TIMEOUT): how long close() waits for sessions still open. */
const IN_PROCESS_CLOSE_MS = 30_000;

const RECEIVE_ADAPTATION: Adaptation = { greetAtOnce: true };

const ENHANCED_AT_START = /^[245]\.\d{1,3}\.\d{1,3} /;

/**
 * smtp-server picks an enhanced code from the reply code alone (a 554 would say 5.6.0); a reply whose
 * text already starts with one is written as it is, every other reply keeps smtp-server's own code.
 */
class ReceiveConnection extends AdaptedConnection {
  // The engine's clients are the edge and trusted hosts: smtp-server's 100 ms early-talker pause would
  // only cap each sender that opens a connection per message at ~10 messages/s.
  protected override get adaptation(): Adaptation {
    return RECEIVE_ADAPTATION;
  }

  protected override writeOwnReply(code: number, data: string | string[] | null | undefined, context: string | false | undefined): void {
    const first = Array.isArray(data) ? data[0] : data;
    super.writeOwnReply(code, data, typeof first === 'string' && ENHANCED_AT_START.test(first) ? false : context);
  }
}

/** The client the message really came from: XFORWARD/XCLIENT replace the session's address and HELO. */
function clientOf(session: SMTPServerSession): { ip: string; helo?: string } {
  const helo = session.hostNameAppearsAs || undefined;
  return { ip: session.remoteAddress, ...(helo ? { helo } : {}) };
}

/** The engine's own trace field, so that a loop between MTAs shows in the hop count. */
function receivedField(session: SMTPServerSession, hostname: string, id: string, now: number): string {
  const clean = (s: string): string => s.replace(/[^\x21-\x7e]/g, '?');
  const c = clientOf(session);
  const ip = c.ip.includes(':') ? `IPv6:${c.ip}` : c.ip;
  return `Received: from ${clean(c.helo ?? 'unknown')} ([${ip}])\r\n\tby ${clean(hostname)} (Portcullis transport) with ESMTP id ${id};\r\n\t${rfc5322Date(new Date(now))}\r\n`;
}

function recipientOf(a: { address: string; dsn?: { notify?: string[]; orcpt?: string } }): EnvelopeRecipient {
  const notify = a.dsn?.notify as EnvelopeRecipient['notify'];
  return { address: a.address, ...(notify?.length ? { notify } : {}), ...(a.dsn?.orcpt ? { orcpt: a.dsn.orcpt } : {}) };
}

/**
 * Starts the engine's SMTP listener. It takes mail only from `allowFrom`, advertises DSN (and SIZE),
 * honours XFORWARD/XCLIENT, and answers `250 2.6.0 <id@host> Queued mail for delivery` only after the
 * content (with the engine's Received: field) and the envelope are written into a slot file whose name
 * is already durable, and that file is synced (`QueueStore.receive`). A write that fails is answered
 * 452 4.3.1.
 */
export async function startReceiveServer(opts: ReceiveServerOptions): Promise<ReceiveServer> {
  // smtp-server merges recipients that differ only in case; a relay must keep their local parts apart
  // (RFC 5321 2.4), so each transaction's recipients are kept here, keyed by its envelope object.
  const recipients = new WeakMap<SMTPServerSession['envelope'], EnvelopeRecipient[]>();
  const serverOptions: SMTPServerOptions = {
    name: opts.hostname,
    banner: 'Portcullis transport ready',
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    hideSMTPUTF8: true,
    hideREQUIRETLS: true,
    useXForward: true,
    useXClient: true,
    size: opts.maxMessageSize,
    maxRecipients: opts.maxRecipients,
    disableReverseLookup: true,
    onConnect(session, cb) {
      if (opts.allowFrom.has(session.remoteAddress)) return cb();
      opts.onError({ kind: 'refused', ip: session.remoteAddress, detail: 'not in transport.allowFrom' });
      cb(refusal(reply(554, '5.7.1', 'Access denied')));
    },
    onMailFrom(address, session, cb) {
      const size = typeof address.args === 'object' && address.args.SIZE ? Number(address.args.SIZE) : 0;
      if (size > opts.maxMessageSize) return cb(refusal(reply(552, '5.3.4', `Message size exceeds the limit of ${opts.maxMessageSize} bytes`)));
      cb();
    },
    onRcptTo(address, session, cb) {
      const list = recipients.get(session.envelope) ?? [];
      // The same address again (exactly) replaces the earlier one, as smtp-server does.
      const i = list.findIndex((r) => r.address === address.address);
      if (i >= 0) list[i] = recipientOf(address);
      else list.push(recipientOf(address));
      recipients.set(session.envelope, list);
      cb();
    },
    onData(stream, session, cb) {
      receive(stream, session).then(
        (queued) => cb(null, queued),
        (err: unknown) => {
          stream.resume();
          if (err instanceof SmtpError) return cb(refusal(err.reply));
          const detail = (err as Error).message;
          opts.onError({ kind: 'storage', ip: session.remoteAddress, detail });
          cb(refusal(err instanceof QueueStorageError ? reply(452, '4.3.1', 'Insufficient system storage') : reply(451, '4.3.0', 'Local error in processing')));
        },
      );
    },
  };

  async function receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const now = opts.clock.now();
    const id = newQueueId(now);
    const content = new HeaderTap();
    content.write(receivedField(session, opts.hostname, id, now));
    (stream as Readable).pipe(content);
    const receipt = await opts.store.receive(id, content);
    const size = receipt.size;
    if (stream.sizeExceeded) {
      await receipt.abandon();
      throw new SmtpError(reply(552, '5.3.4', `Message size exceeds the limit of ${opts.maxMessageSize} bytes`));
    }
    const env = session.envelope;
    const envelope: Envelope = {
      id,
      mailFrom: env.mailFrom === false ? '' : env.mailFrom.address,
      recipients: recipients.get(env) ?? env.rcptTo.map(recipientOf),
      size,
      // smtp-server counted these bytes against the SIZE limit; the categorizer must judge the same ones.
      sentSize: stream.byteLength,
      receivedAt: now,
      client: clientOf(session),
      ...(env.dsn?.ret ? { ret: env.dsn.ret as 'FULL' | 'HDRS' } : {}),
      ...(env.dsn?.envid ? { envid: env.dsn.envid } : {}),
    };
    const messageId = content.messageId();
    const message: QueuedMessage = {
      envelope,
      contentId: id,
      rootId: id,
      ...(messageId ? { messageId } : {}),
      kind: 'message',
      deliveries: [],
      attempts: 0,
      nextAttemptAt: 0,
    };
    await receipt.commit(message);
    const queued = `<${id}@${opts.hostname}> Queued mail for delivery`;
    opts.onQueued(message, `250 2.6.0 ${queued}`);
    return queued;
  }

  const server = new AdaptedSmtpServer(serverOptions, (srv, socket, socketOptions) => new ReceiveConnection(srv, socket, socketOptions));
  server.listen(opts.port, opts.host);
  const bound = await boundAddress(server.server, server);
  // A client that drops mid-session is reported, and must not bring the listener down.
  server.on('error', (err: Error) => opts.onError({ kind: 'connection', ip: '', detail: err.message }));
  // The net server's close waits for TCP sessions only; close() waits for these too.
  const inProcess = new Set<Duplex>();
  let closing = false;
  return {
    address: { host: bound.address, port: bound.port },
    accept(stream) {
      if (closing) return void stream.destroy();
      inProcess.add(stream);
      stream.once('close', () => inProcess.delete(stream));
      // smtp-server uses only the socket members a PairedSocket has (see net/stream-pair.ts).
      server.connect(stream as net.Socket, null);
    },
    async close() {
      closing = true;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // smtp-server gives TCP sessions at most its close time-out, then cuts them; these get the same.
      let timer: NodeJS.Timeout | undefined;
      const cut = new Promise<void>((resolve) => (timer = setTimeout(resolve, IN_PROCESS_CLOSE_MS)));
      const ended = Promise.all([...inProcess].map((s) => new Promise((resolve) => (s.closed ? resolve(undefined) : s.once('close', resolve)))));
      await Promise.race([ended, cut]);
      clearTimeout(timer);
      for (const s of inProcess) s.destroy();
    },
  };
}
