/**
 * What a listener keeps of each open socket and each session, kept on the socket and on smtp-server's
 * session object themselves, as fields no enumeration or copy of them (a log line, a spread) meets:
 * Sets and Maps keyed by them held each closed connection through the young generation's collections,
 * promoting every connection (runtime/open-list.ts).
 */
import type net from 'node:net';
import type { SMTPServerSession } from 'smtp-server';
import type { OpenEntry } from '../runtime/open-list.js';
import type { EdgeSession } from './edge-session.js';

/** The per-client slot a session holds (maxConnectionsPerClient), given back once at its end. */
export interface ClientSlot {
  client: string;
  /** `address port` of a PROXY-reported client, whose balancer is remembered until its session starts. */
  proxiedKey: string | undefined;
  released: boolean;
}

export interface OpenSocket {
  readonly entry: OpenEntry<net.Socket>;
  /** The client slot, once the socket's session started. */
  slot: ClientSlot | undefined;
}

export interface OpenSession {
  readonly entry: OpenEntry<SMTPServerSession>;
  readonly edge: EdgeSession;
}

const OPEN_SOCKET = Symbol('open socket');
const OPEN_SESSION = Symbol('open session');

type Holder<K extends symbol, T> = { [key in K]?: T | undefined };

function hide(target: object, key: symbol, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true });
}

export function keepSocket(socket: net.Socket, open: OpenSocket): void {
  hide(socket, OPEN_SOCKET, open);
}

export function openSocket(socket: net.Socket): OpenSocket | undefined {
  return (socket as Holder<typeof OPEN_SOCKET, OpenSocket>)[OPEN_SOCKET];
}

/** The socket's record, forgotten: undefined when it was already (or never kept). */
export function takeSocket(socket: net.Socket): OpenSocket | undefined {
  const open = openSocket(socket);
  if (open) (socket as Holder<typeof OPEN_SOCKET, OpenSocket>)[OPEN_SOCKET] = undefined;
  return open;
}

export function keepSession(session: SMTPServerSession, open: OpenSession): void {
  hide(session, OPEN_SESSION, open);
}

/** The session's record, forgotten: undefined when it was already (or never kept). */
export function takeSession(session: SMTPServerSession): OpenSession | undefined {
  const holder = session as Holder<typeof OPEN_SESSION, OpenSession>;
  const open = holder[OPEN_SESSION];
  if (open) holder[OPEN_SESSION] = undefined;
  return open;
}

export function edgeOf(session: SMTPServerSession): EdgeSession | undefined {
  return (session as Holder<typeof OPEN_SESSION, OpenSession>)[OPEN_SESSION]?.edge;
}
