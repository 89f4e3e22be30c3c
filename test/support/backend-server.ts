/**
 * A real SMTP back end for tests, built on smtp-server: records every message it accepted (envelope,
 * bytes, XFORWARD attributes) and can be told to fail at a stage, to stall, or to die mid-DATA.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

/** One message the back end accepted with its 250. */
export interface ReceivedMessage {
  from: string;
  to: string[];
  /** The bytes, unless `discardData` was set (then empty). */
  data: Buffer;
  size: number;
  sha256: string;
  xforward: Record<string, string>;
  xclient: Record<string, string>;
  helo: string;
  secure: boolean;
}

/** A reply the back end gives instead of accepting; smtp-server adds the enhanced code for the reply code. */
export interface FailReply {
  code: number;
  text: string;
}

/** Behaviour switches; change them between sessions with `backend.behaviour = {...}`. */
export interface BackendBehaviour {
  mail?: FailReply;
  /** Per recipient address (lower-case). */
  rcpt?: Record<string, FailReply>;
  /** The reply to the final dot. */
  dataEnd?: FailReply;
  /** Destroy the connection after this many message bytes have arrived. */
  dieAfterBytes?: number;
  /** Delay before answering the end of data. */
  dataEndDelayMs?: number;
  /** Keep only size and hash of each message (for very large ones). */
  discardData?: boolean;
  /** Read DATA no faster than this, pausing the stream after each chunk (a slow back end). */
  dataBytesPerSecond?: number;
}

/** The running back end and what it saw. */
export interface TestBackend {
  host: string;
  port: number;
  messages: ReceivedMessage[];
  /** Transactions that began (MAIL FROM accepted) but never completed, e.g. abandoned mid-DATA. */
  incomplete: number;
  /** Every MAIL FROM the back end was offered, accepted or not. */
  mailFroms: string[];
  /** Every RCPT TO it was offered. */
  rcptTos: string[];
  /** DATA commands it answered 354 to (message streams begun), complete or not. */
  dataStarted: number;
  /** Connections it has seen. */
  connections: number;
  behaviour: BackendBehaviour;
  close(): Promise<void>;
}

/** Starts a recording back end on 127.0.0.1, port 0. */
export async function startBackend(opts: { starttls?: boolean; xforward?: boolean; xclient?: boolean } = {}): Promise<TestBackend> {
  const state: Omit<TestBackend, 'host' | 'port' | 'close'> = {
    messages: [],
    incomplete: 0,
    mailFroms: [],
    rcptTos: [],
    dataStarted: 0,
    connections: 0,
    behaviour: {},
  };
  const fail = (r: FailReply): Error => Object.assign(new Error(r.text), { responseCode: r.code });
  const server = new SMTPServer({
    name: 'backend.test',
    logger: false,
    disabledCommands: opts.starttls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    hideSTARTTLS: !opts.starttls,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    useXForward: opts.xforward ?? !opts.xclient,
    useXClient: opts.xclient ?? false,
    size: 200 * 1024 * 1024,
    onConnect(_session, cb) {
      state.connections += 1;
      cb();
    },
    onMailFrom(address, _session: SMTPServerSession, cb) {
      state.mailFroms.push(address.address);
      if (state.behaviour.mail) return cb(fail(state.behaviour.mail));
      cb();
    },
    onRcptTo(address, _session, cb) {
      state.rcptTos.push(address.address);
      const r = state.behaviour.rcpt?.[address.address.toLowerCase()];
      if (r) return cb(fail(r));
      cb();
    },
    onData(stream, session, cb) {
      state.dataStarted += 1;
      const b = state.behaviour;
      const chunks: Buffer[] = [];
      const hash = createHash('sha256');
      let bytes = 0;
      let died = false;
      let ended = false;
      stream.on('data', (c: Buffer) => {
        if (!b.discardData) chunks.push(c);
        hash.update(c);
        bytes += c.length;
        if (b.dataBytesPerSecond) {
          stream.pause();
          setTimeout(() => stream.resume(), (c.length / b.dataBytesPerSecond) * 1000);
        }
        if (b.dieAfterBytes !== undefined && bytes >= b.dieAfterBytes && !died) {
          died = true;
          const conn = [...server.connections].find((c2) => c2.session === session);
          conn?._socket.destroy();
        }
      });
      stream.on('error', () => undefined);
      stream.on('close', () => {
        if (!ended) state.incomplete += 1;
      });
      stream.on('end', () => {
        ended = true;
        if (died) return;
        const finish = (): void => {
          if (b.dataEnd) return cb(fail(b.dataEnd));
          state.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            data: Buffer.concat(chunks),
            size: bytes,
            sha256: hash.digest('hex'),
            xforward: Object.fromEntries([...session.xForward.entries()].map(([k, v]) => [k, String(v)])),
            xclient: Object.fromEntries([...session.xClient.entries()].map(([k, v]) => [k, String(v)])),
            helo: session.hostNameAppearsAs,
            secure: session.secure,
          });
          cb(null, `Ok: queued as Q${state.messages.length}`);
        };
        if (b.dataEndDelayMs) setTimeout(finish, b.dataEndDelayMs);
        else finish();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address() as net.AddressInfo;
  const backend = Object.assign(state, {
    host: '127.0.0.1',
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of server.connections) c._socket.destroy();
        server.close(() => resolve());
      }),
  });
  return backend;
}

/** A TCP server that accepts connections and never says a word (a black hole). */
export async function startBlackHole(): Promise<{ port: number; sockets: net.Socket[]; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
