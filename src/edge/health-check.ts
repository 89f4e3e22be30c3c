/**
 * A load balancer's health checks. A balancer that speaks PROXY protocol to the edge checks it every
 * few seconds over connections it opens itself; those are not mail and must not look like sessions
 * (no policy, no decision or protocol log line, no session metrics). HAProxy 2.6 marks such a
 * connection in two ways (captured from `check` with `send-proxy-v2` and with `send-proxy`):
 *
 * - v2: the `LOCAL` command, which the PROXY spec reserves for connections the proxy makes itself;
 * - v1: a `TCP4`/`TCP6` header describing the check connection itself: its source is the balancer's
 *   own address and port, exactly the peer the edge sees.
 *
 * A check gets what `option smtpchk` and its like expect: the greeting, `250` to HELO/EHLO, NOOP and
 * RSET, `221` to QUIT; any other command is not available. It never reaches the SMTP server.
 */
import type net from 'node:net';
import { normalizeIp } from '../net/ip.js';
import type { ProxyInfo } from './proxy-protocol.js';
import { formatReply, reply, type SmtpReply } from '../net/smtp-reply.js';

/** A check is over in milliseconds; one that lingers past this is closed. */
const HEALTH_CHECK_TIMEOUT_MS = 10_000;
/** RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF. */
const MAX_LINE = 512;
/** How long the balancer may keep its side open after the closing reply. */
const CLOSE_LINGER_MS = 2000;

/** Whether the PROXY header says the balancer opened this connection itself. */
export function isHealthCheck(info: ProxyInfo, socket: net.Socket): boolean {
  if (info.command === 'LOCAL') return true;
  if (info.local || socket.remoteAddress === undefined) return false;
  return info.sourcePort === socket.remotePort && info.sourceAddress === normalizeIp(socket.remoteAddress);
}

/** The reply to one command line of a health check, and whether the connection closes after it. */
export function healthCheckReply(line: string, hostname: string): { reply: SmtpReply; close: boolean } {
  const verb = (/^\S*/.exec(line)?.[0] ?? '').toUpperCase();
  switch (verb) {
    case 'HELO':
    case 'EHLO':
      return { reply: reply(250, '', hostname), close: false };
    case 'NOOP':
    case 'RSET':
      return { reply: reply(250, '2.0.0', 'OK'), close: false };
    case 'QUIT':
      return { reply: reply(221, '2.0.0', 'Bye'), close: true };
    default:
      return { reply: reply(502, '5.5.1', 'Command not available on a health check connection'), close: false };
  }
}

/**
 * Answers a health check on a socket whose PROXY header has been read: greets, then answers each
 * command line until QUIT, a line over 512 octets, or the time-out.
 */
export function answerHealthCheck(socket: net.Socket, hostname: string): void {
  let pending = '';
  let closed = false;
  const close = (last: SmtpReply): void => {
    closed = true;
    clearTimeout(timer);
    socket.end(formatReply(last));
    setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  };
  const timer = setTimeout(() => close(reply(421, '4.4.2', 'Health check timeout, closing connection')), HEALTH_CHECK_TIMEOUT_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.on('data', (chunk: Buffer) => {
    if (closed) return;
    pending += chunk.toString('latin1');
    let nl: number;
    while (!closed && (nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      if (nl + 1 > MAX_LINE) return close(reply(500, '5.5.2', 'Line too long'));
      const r = healthCheckReply(line, hostname);
      if (r.close) return close(r.reply);
      socket.write(formatReply(r.reply));
    }
    if (!closed && pending.length >= MAX_LINE) close(reply(500, '5.5.2', 'Line too long'));
  });
  socket.write(formatReply(reply(220, '', `${hostname} ESMTP`)));
}
