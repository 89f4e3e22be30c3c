import type { Readable } from 'node:stream';
import type { SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { boundAddress } from '../net/bound.js';
import { reply, replyTexts, SmtpError, type SmtpReply } from '../net/smtp-reply.js';
import type { IpList } from '../net/ip-list.js';
import { type Adaptation, AdaptedConnection, AdaptedSmtpServer } from '../net/smtp-server-adapter.js';
import { type ReceiveClient, type ReceiveSettings, ReceiveTransaction } from './receive-transaction.js';
import type { EnvelopeRecipient } from './types.js';

/** How the engine's SMTP listener is set up. */
export interface ReceiveServerOptions extends ReceiveSettings {
  host: string;
  port: number;
  /** Only these clients may connect; others get 554 5.7.1. */
  allowFrom: IpList;
}

/** The running listener. */
export interface ReceiveServer {
  address: { host: string; port: number };
  /**
   * Begins a transaction for `client` handed over by a caller in this process (serve's edge), without
   * SMTP text: the caller is taken as a client from 127.0.0.1 (allowFrom applies), and each step answers
   * as the listener would. Throws an SmtpError (554 5.7.1 when not allowed, 421 4.3.2 once close() has begun).
   */
  open(client: ReceiveClient): ReceiveTransaction;
  /** Stops listening and resolves once every session, and every transaction begun with open(), has ended. */
  close(): Promise<void>;
}

/** A handler's refusal as smtp-server writes it: `responseCode`, then the message (enhanced code and text). */
function refusal(r: SmtpReply): Error {
  return Object.assign(new Error(replyTexts(r).join(' ')), { responseCode: r.code });
}

/** smtp-server's own close time-out (CLOSE_TIMEOUT): how long close() waits for sessions still open. */
const IN_PROCESS_CLOSE_MS = 30_000;

/** What a caller in this process is taken for, as its loopback connection was before. */
const IN_PROCESS_IP = '127.0.0.1';

const RECEIVE_ADAPTATION: Adaptation = { greetAtOnce: true, closeAtOnce: true };

const ENHANCED_AT_START = /^[245]\.\d{1,3}\.\d{1,3} /;

/**
 * smtp-server picks an enhanced code from the reply code alone (a 554 would say 5.6.0); a reply whose
 * text already starts with one is written as it is, every other reply keeps smtp-server's own code.
 */
class ReceiveConnection extends AdaptedConnection {
  // The engine's clients are the edge and trusted hosts: smtp-server's 100 ms early-talker pause would
  // only cap each sender that opens a connection per message at ~10 messages/s. Nor do they need the
  // socket half-open after QUIT: closing it at once spares the CPU of the reset many clients answer with.
  protected override get adaptation(): Adaptation {
    return RECEIVE_ADAPTATION;
  }

  protected override writeOwnReply(code: number, data: string | string[] | null | undefined, context: string | false | undefined): void {
    const first = Array.isArray(data) ? data[0] : data;
    super.writeOwnReply(code, data, typeof first === 'string' && ENHANCED_AT_START.test(first) ? false : context);
  }
}

/** The client the message really came from: XFORWARD/XCLIENT replace the session's address and HELO. */
function clientOf(session: SMTPServerSession): ReceiveClient {
  const helo = session.hostNameAppearsAs || undefined;
  return { ip: session.remoteAddress, ...(helo ? { helo } : {}) };
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
  // Each SMTP transaction, keyed by the envelope object smtp-server keeps from MAIL FROM to the end of DATA.
  const transactions = new WeakMap<SMTPServerSession['envelope'], ReceiveTransaction>();
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
    // Advertised, and checked against SIZE= before onMailFrom (in the same words as ReceiveTransaction).
    size: opts.maxMessageSize,
    disableReverseLookup: true,
    onConnect(session, cb) {
      if (opts.allowFrom.has(session.remoteAddress)) return cb();
      opts.onError({ kind: 'refused', ip: session.remoteAddress, detail: 'not in transport.allowFrom' });
      cb(refusal(reply(554, '5.7.1', 'Access denied')));
    },
    onMailFrom(address, session, cb) {
      const tx = new ReceiveTransaction(opts, clientOf(session));
      const size = typeof address.args === 'object' && address.args.SIZE ? Number(address.args.SIZE) : undefined;
      const dsn = session.envelope.dsn;
      const r = tx.mail(address.address, { ...(size !== undefined ? { size } : {}), ...(dsn?.ret ? { ret: dsn.ret as 'FULL' | 'HDRS' } : {}), ...(dsn?.envid ? { envid: dsn.envid } : {}) });
      if (r.code >= 400) return cb(refusal(r));
      transactions.set(session.envelope, tx);
      cb();
    },
    onRcptTo(address, session, cb) {
      // smtp-server asks for MAIL first; a transaction with no sender would answer that too.
      const tx = transactions.get(session.envelope) ?? new ReceiveTransaction(opts, clientOf(session));
      const r = tx.rcpt(recipientOf(address));
      cb(r.code >= 400 ? refusal(r) : null);
    },
    onData(stream, session, cb) {
      const tx = transactions.get(session.envelope) ?? new ReceiveTransaction(opts, clientOf(session));
      // The store stops reading on a failed write; the rest is drained here, not destroyed (smtp-server
      // answers only once the stream has ended).
      const body = (stream as Readable).iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
      tx.data(body).then(
        (r) => {
          if (r.code < 400) return cb(null, r.lines[0]);
          stream.resume();
          cb(refusal(r));
        },
        (err: unknown) => {
          stream.resume();
          cb(err as Error);
        },
      );
    },
  };

  const server = new AdaptedSmtpServer(serverOptions, (srv, socket, socketOptions) => new ReceiveConnection(srv, socket, socketOptions));
  server.listen(opts.port, opts.host);
  const bound = await boundAddress(server.server, server);
  // A client that drops mid-session is reported, and must not bring the listener down.
  server.on('error', (err: Error) => opts.onError({ kind: 'connection', ip: '', detail: err.message }));
  // The net server's close waits for TCP sessions only; close() waits for these too.
  const inProcess = new Set<ReceiveTransaction>();
  let drained: (() => void) | undefined;
  let closing = false;
  return {
    address: { host: bound.address, port: bound.port },
    open(client) {
      if (closing) throw new SmtpError(reply(421, '4.3.2', 'Service shutting down'));
      if (!opts.allowFrom.has(IN_PROCESS_IP)) {
        opts.onError({ kind: 'refused', ip: IN_PROCESS_IP, detail: 'not in transport.allowFrom' });
        throw new SmtpError(reply(554, '5.7.1', 'Access denied'));
      }
      const tx: ReceiveTransaction = new ReceiveTransaction(opts, client, () => {
        inProcess.delete(tx);
        if (inProcess.size === 0) drained?.();
      });
      inProcess.add(tx);
      return tx;
    },
    async close() {
      closing = true;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // smtp-server gives TCP sessions at most its close time-out, then cuts them; these get the same.
      let timer: NodeJS.Timeout | undefined;
      const cut = new Promise<void>((resolve) => (timer = setTimeout(resolve, IN_PROCESS_CLOSE_MS)));
      const ended = new Promise<void>((resolve) => (inProcess.size === 0 ? resolve() : (drained = resolve)));
      await Promise.race([ended, cut]);
      clearTimeout(timer);
      for (const tx of [...inProcess]) tx.abandon();
    },
  };
}
