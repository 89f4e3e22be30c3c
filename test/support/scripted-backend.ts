/**
 * A raw-socket SMTP back end that misbehaves on cue: each command gets the reply a test scripts for it
 * (written verbatim, so one script can hold two replies, a wrong code, a broken multi-line reply), and
 * a reply can be pushed into the middle of DATA. It records what it was told and which messages it
 * took: a message counts as taken only when its final dot arrived and was answered 2xx.
 */
import net from 'node:net';

/** Replies written verbatim (CRLFs included) in answer to each command; undefined keeps the default. */
export interface Script {
  greeting?: string;
  ehlo?: string;
  xforward?: string;
  /** The reply to STARTTLS; no handshake follows (the edge must give up on a bad reply first). */
  starttls?: string;
  mail?: string;
  rcpt?: string;
  /** The reply to DATA; the server reads message data only if it starts with `354`. */
  data?: string;
  /** Written once, as soon as the first message bytes arrive (before the final dot). */
  duringData?: string;
  /** The reply to the final dot. */
  dot?: string;
  quit?: string;
  rset?: string;
  /** The next command with this verb (upper-case) gets no reply: the connection is closed instead, once. */
  hangUpOnce?: string;
}

/** What one connection saw. */
export interface ScriptedConnection {
  /** Command lines, in order, without CRLF (message data excluded). */
  commands: string[];
  /** Message bytes received after 354, up to and excluding the final dot (dot-stuffed as on the wire). */
  data: string;
  /** Resolves once the connection is closed (by either side). */
  closed: Promise<void>;
}

/** The running back end. */
export interface ScriptedBackend {
  port: number;
  connections: ScriptedConnection[];
  /** Messages whose final dot was answered 2xx: what the back end took responsibility for. */
  taken: string[];
  script: Script;
  /** Writes `text` on every open connection, out of turn (and closes them after it when `end`). */
  say(text: string, end?: boolean): void;
  /** Resolves when some connection next receives message bytes; rejects after `timeoutMs`. */
  dataArrives(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const DEFAULTS: Required<Omit<Script, 'duringData' | 'starttls' | 'hangUpOnce'>> = {
  greeting: '220 scripted.test ESMTP\r\n',
  ehlo: '250-scripted.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-XFORWARD NAME ADDR PROTO HELO\r\n250 ENHANCEDSTATUSCODES\r\n',
  xforward: '250 2.0.0 Ok\r\n',
  mail: '250 2.1.0 Ok\r\n',
  rcpt: '250 2.1.5 Ok\r\n',
  data: '354 End data with <CR><LF>.<CR><LF>\r\n',
  dot: '250 2.0.0 Ok: queued\r\n',
  quit: '221 2.0.0 Bye\r\n',
  rset: '250 2.0.0 Ok\r\n',
};

/** Starts a scripted back end on 127.0.0.1, port 0; change `script` between sessions. */
export async function startScriptedBackend(script: Script = {}): Promise<ScriptedBackend> {
  const sockets = new Set<net.Socket>();
  const state: Omit<ScriptedBackend, 'port' | 'close' | 'dataArrives' | 'say'> = { connections: [], taken: [], script };
  let dataWaiters: (() => void)[] = [];
  const reply = (key: keyof typeof DEFAULTS): string => state.script[key] ?? DEFAULTS[key];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const conn: ScriptedConnection = {
      commands: [],
      data: '',
      closed: new Promise((resolve) =>
        socket.on('close', () => {
          sockets.delete(socket);
          resolve();
        }),
      ),
    };
    state.connections.push(conn);
    let buffer = '';
    let inData = false;
    let injected = false;
    socket.write(reply('greeting'));
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          if (buffer.length > 0) {
            for (const w of dataWaiters) w();
            dataWaiters = [];
          }
          if (!injected && buffer.length > 0 && state.script.duringData !== undefined) {
            injected = true;
            socket.write(state.script.duringData);
          }
          const end = `\r\n${buffer}`.indexOf('\r\n.\r\n');
          if (end < 0) break;
          conn.data = `\r\n${buffer}`.slice(2, end + 2);
          buffer = buffer.slice(end + 3);
          inData = false;
          const answer = reply('dot');
          if (/^2/.test(answer)) state.taken.push(conn.data);
          socket.write(answer);
          continue;
        }
        const nl = buffer.indexOf('\r\n');
        if (nl < 0) break;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        conn.commands.push(line);
        const verb = line.split(' ')[0]?.toUpperCase() ?? '';
        if (verb === state.script.hangUpOnce) {
          delete state.script.hangUpOnce;
          socket.destroy();
          return;
        }
        if (verb === 'EHLO') socket.write(reply('ehlo'));
        else if (verb === 'XFORWARD') socket.write(reply('xforward'));
        else if (verb === 'STARTTLS') socket.write(state.script.starttls ?? '454 4.7.0 TLS not available\r\n');
        else if (verb === 'MAIL') socket.write(reply('mail'));
        else if (verb === 'RCPT') socket.write(reply('rcpt'));
        else if (verb === 'RSET') socket.write(reply('rset'));
        else if (verb === 'DATA') {
          const answer = reply('data');
          socket.write(answer);
          inData = answer.startsWith('354');
        } else if (verb === 'QUIT') {
          socket.end(reply('quit'));
          return;
        } else socket.write('502 5.5.2 Command not recognised\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, {
    port: (server.address() as net.AddressInfo).port,
    say: (text: string, end = false) => {
      for (const s of sockets) {
        if (end) s.end(text);
        else s.write(text);
      }
    },
    dataArrives: (timeoutMs = 5000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no message data within ${timeoutMs} ms`)), timeoutMs);
        dataWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
}
