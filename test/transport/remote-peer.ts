/** A real SMTP server (smtp-server) as the remote host of transport tests; its answer to RCPT is scripted per attempt. */
import { once } from 'node:events';
import type net from 'node:net';
import { SMTPServer } from 'smtp-server';

/** What the peer answers to RCPT TO on one attempt: accept, or an error reply. */
export type PeerAnswer = 'accept' | { code: number; text: string };

export interface RemotePeer {
  port: number;
  /** RCPT TO commands seen, in order. */
  rcpts: string[];
  /** The NOTIFY of each RCPT TO, in order (`-` without one); only when the peer offers DSN. */
  notify: string[];
  /** Messages accepted (the raw content). */
  messages: { from: string; to: string[]; content: string }[];
  close(): Promise<void>;
}

/**
 * Starts the peer on 127.0.0.1 (a free port unless `port` is given); `answer(n)` decides the n-th RCPT
 * (0-based). It offers DSN only with `dsn: true`, and then records each RCPT's NOTIFY in `notify`.
 */
export async function startRemotePeer(
  answer: (n: number, rcpt: string) => PeerAnswer,
  opts: { port?: number; dsn?: boolean } = {},
): Promise<RemotePeer> {
  const rcpts: string[] = [];
  const notify: string[] = [];
  const messages: RemotePeer['messages'] = [];
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideENHANCEDSTATUSCODES: false,
    hideDSN: opts.dsn !== true,
    onRcptTo(address, _session, cb) {
      const a = answer(rcpts.length, address.address);
      rcpts.push(address.address);
      if (opts.dsn === true) notify.push([address.dsn?.notify ?? []].flat().join(',') || '-');
      if (a === 'accept') return cb();
      cb(Object.assign(new Error(a.text), { responseCode: a.code }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          content: Buffer.concat(chunks).toString('utf8'),
        });
        cb();
      });
    },
  });
  server.listen(opts.port ?? 0, '127.0.0.1');
  await once(server.server, 'listening');
  return {
    port: (server.server.address() as net.AddressInfo).port,
    rcpts,
    notify,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
