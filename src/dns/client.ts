import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { endpointOf } from '../net/endpoint.js';
import dnsPacket from 'dns-packet';
import { systemClock, type Timers } from '../runtime/clock.js';

/** The record types this stub client asks for. */
export type QueryType = 'A' | 'AAAA' | 'TXT' | 'MX' | 'SOA' | 'PTR';

/** Response codes by name (RFC 1035 / 6895); unknown values come back as `RCODE<n>`. */
export type Rcode = 'NOERROR' | 'FORMERR' | 'SERVFAIL' | 'NXDOMAIN' | 'NOTIMP' | 'REFUSED' | `RCODE${number}`;

export interface MxData {
  exchange: string;
  preference: number;
}

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

/** One resource record of the answer section, decoded for the types a mail system needs. */
export type DnsRecord =
  | { type: 'A' | 'AAAA' | 'CNAME' | 'TXT' | 'PTR'; name: string; ttl: number; data: string }
  | { type: 'MX'; name: string; ttl: number; data: MxData }
  | { type: 'SOA'; name: string; ttl: number; data: SoaData };

export interface DnsResponse {
  rcode: Rcode;
  answers: DnsRecord[];
  /** RFC 2308: how long a negative answer may be cached (min of the SOA's TTL and its MINIMUM). */
  negativeTtl?: number;
  /** The server that answered, as configured ("host:port"). */
  server: string;
}

/** Why a query produced no usable response. */
export type DnsErrorKind = 'timeout' | 'unreachable' | 'truncated' | 'malformed' | 'network';

/** A query that failed; `kind` says how, so callers can tell a time-out from a broken server. */
export class DnsError extends Error {
  constructor(
    readonly kind: DnsErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'DnsError';
  }
}

export interface DnsClientOptions {
  /** Resolvers as "host:port", IPv6 in brackets: "127.0.0.1:53", "[::1]:53". */
  servers: string[];
  /** Hard limit for one whole `query` call, all servers included. */
  timeoutMs: number;
  /** Where the deadline and the wait before the next server are set (the process's own timers). */
  timers?: Timers;
}

export interface QueryOptions {
  /** A tighter limit than the client's, e.g. what is left of a caller's own deadline. */
  timeoutMs?: number;
}

interface Server {
  label: string;
  host: string;
  port: number;
  family: 'udp4' | 'udp6';
}

const RCODE_NAMES: Record<number, Rcode> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
};

/** Parse "host:port" / "[v6]:port" into a socket target; throws on anything else. */
export function parseServer(spec: string): Server {
  const endpoint = endpointOf(spec);
  if (!endpoint || !isIP(endpoint.host) || endpoint.port < 1) {
    throw new Error(`bad DNS server "${spec}" (dns.servers): expected ip:port or [ipv6]:port`);
  }
  const { host, port } = endpoint;
  return { label: spec, host, port, family: isIP(host) === 6 ? 'udp6' : 'udp4' };
}

function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

function txtText(data: unknown): string {
  const parts = Array.isArray(data) ? data : [data];
  return parts.map((p) => (Buffer.isBuffer(p) ? p.toString('utf8') : String(p))).join('');
}

function decodeRecord(a: dnsPacket.Answer): DnsRecord | undefined {
  const ttl = 'ttl' in a && typeof a.ttl === 'number' ? a.ttl : 0;
  switch (a.type) {
    case 'A':
    case 'AAAA':
    case 'CNAME':
    case 'PTR':
      return { type: a.type, name: a.name, ttl, data: a.data };
    case 'TXT':
      return { type: 'TXT', name: a.name, ttl, data: txtText(a.data) };
    case 'MX':
      return { type: 'MX', name: a.name, ttl, data: { exchange: a.data.exchange, preference: a.data.preference ?? 0 } };
    case 'SOA':
      return {
        type: 'SOA',
        name: a.name,
        ttl,
        data: {
          mname: a.data.mname,
          rname: a.data.rname,
          serial: a.data.serial ?? 0,
          refresh: a.data.refresh ?? 0,
          retry: a.data.retry ?? 0,
          expire: a.data.expire ?? 0,
          minimum: a.data.minimum ?? 0,
        },
      };
    default:
      return undefined;
  }
}

function negativeTtlOf(packet: dnsPacket.DecodedPacket): number | undefined {
  for (const rr of packet.authorities ?? []) {
    if (rr.type !== 'SOA') continue;
    const ttl = rr.ttl ?? 0;
    return Math.min(ttl, rr.data.minimum ?? ttl);
  }
  return undefined;
}

/** One attempt against one server; settles once, and always releases its socket. */
class Attempt {
  readonly done: Promise<DnsResponse>;
  private socket: dgram.Socket | undefined;
  private settled = false;

  constructor(server: Server, name: string, type: QueryType) {
    const id = randomInt(0, 65536);
    const query = dnsPacket.encode({
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name, class: 'IN' }],
    });
    this.done = new Promise<DnsResponse>((resolve, reject) => {
      const socket = dgram.createSocket(server.family);
      this.socket = socket;
      const finish = (fn: () => void): void => {
        if (this.settled) return;
        this.settled = true;
        this.close();
        fn();
      };
      socket.on('error', (err: NodeJS.ErrnoException) => {
        const kind: DnsErrorKind = err.code === 'ECONNREFUSED' ? 'unreachable' : 'network';
        finish(() => reject(new DnsError(kind, `${server.label}: ${err.code ?? err.message}`)));
      });
      socket.on('message', (msg) => {
        let packet: dnsPacket.DecodedPacket;
        try {
          packet = dnsPacket.decode(msg);
        } catch {
          return; // Not a DNS message: ignore it and keep waiting, as a spoofer could send anything.
        }
        const q = packet.questions?.[0];
        if (packet.id !== id || !packet.flag_qr || !q || q.type !== type || !sameName(q.name, name)) return;
        // A truncated answer would need a retry over TCP. DNSBL answers are a few records and fit
        // in one datagram, so a TC bit means something is wrong upstream: report it as an error.
        if (packet.flag_tc) {
          finish(() => reject(new DnsError('truncated', `${server.label}: truncated answer for ${name} ${type}`)));
          return;
        }
        const flags = packet.flags ?? 0;
        const rcode = RCODE_NAMES[flags & 0x0f] ?? (`RCODE${flags & 0x0f}` as Rcode);
        const answers = (packet.answers ?? []).map(decodeRecord).filter((r): r is DnsRecord => r !== undefined);
        const negativeTtl = negativeTtlOf(packet);
        const response: DnsResponse =
          negativeTtl === undefined
            ? { rcode, answers, server: server.label }
            : { rcode, answers, negativeTtl, server: server.label };
        finish(() => resolve(response));
      });
      // Binding to port 0 gives a fresh, kernel-randomised source port per query; connecting makes
      // the kernel deliver ICMP port-unreachable as ECONNREFUSED instead of silence. Exclusive: in a
      // cluster worker a shared bind goes through the primary and the socket cannot be connected.
      socket.bind({ port: 0, exclusive: true }, () => {
        if (this.settled) return;
        socket.connect(server.port, server.host, () => {
          if (this.settled) return;
          socket.send(query, (err) => {
            if (err) finish(() => reject(new DnsError('network', `${server.label}: ${err.message}`)));
          });
        });
      });
    });
    // Callers may abandon an attempt (another server answered first); never leave it unhandled.
    this.done.catch(() => undefined);
  }

  /** Give up on this attempt: no answer will be accepted after this. */
  abandon(): void {
    this.settled = true;
    this.close();
  }

  private close(): void {
    const s = this.socket;
    this.socket = undefined;
    if (s) {
      try {
        s.close();
      } catch {
        // Already closed by a failed bind: nothing left to release.
      }
    }
  }
}

function isServerFailure(rcode: Rcode): boolean {
  return rcode !== 'NOERROR' && rcode !== 'NXDOMAIN';
}

/**
 * A UDP stub resolver client: one try per server, one hard deadline for the whole call. With
 * several servers the next one is started when the previous fails, or after its fair share of the
 * deadline has passed (the earlier ones stay open, so a slow first answer still counts).
 */
export class DnsClient {
  private readonly servers: Server[];
  readonly timeoutMs: number;
  private readonly timers: Timers;

  constructor(options: DnsClientOptions) {
    if (options.servers.length === 0) throw new Error('DnsClient needs at least one server');
    if (!(options.timeoutMs > 0)) throw new Error('DnsClient timeoutMs must be positive');
    this.servers = options.servers.map(parseServer);
    this.timeoutMs = options.timeoutMs;
    this.timers = options.timers ?? systemClock;
  }

  /** Ask for `name`/`type`. Resolves with any DNS response; rejects with a DnsError. */
  query(name: string, type: QueryType, options: QueryOptions = {}): Promise<DnsResponse> {
    const budget = Math.min(this.timeoutMs, options.timeoutMs ?? this.timeoutMs);
    const servers = this.servers;
    const share = budget / servers.length;
    const timers = this.timers;
    return new Promise<DnsResponse>((resolve, reject) => {
      const attempts: Attempt[] = [];
      let next = 0;
      let pending = 0;
      let settled = false;
      let lastFailure: DnsResponse | undefined;
      let lastError: DnsError | undefined;
      let stagger: unknown;

      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        timers.clearTimeout(deadline);
        timers.clearTimeout(stagger);
        for (const a of attempts) a.abandon();
        fn();
      };
      const deadline = timers.setTimeout(() => {
        settle(() => reject(new DnsError('timeout', `no answer for ${name} ${type} within ${budget} ms`)));
      }, budget);

      const allFailed = (): void => {
        if (lastFailure) {
          const failure = lastFailure;
          settle(() => resolve(failure));
        } else {
          settle(() => reject(lastError ?? new DnsError('network', `no server answered ${name} ${type}`)));
        }
      };

      const startNext = (): void => {
        if (settled) return;
        timers.clearTimeout(stagger);
        if (next >= servers.length) {
          if (pending === 0) allFailed();
          return;
        }
        const server = servers[next++]!;
        const attempt = new Attempt(server, name, type);
        attempts.push(attempt);
        pending++;
        if (next < servers.length) stagger = timers.setTimeout(startNext, share);
        attempt.done.then(
          (response) => {
            pending--;
            if (!isServerFailure(response.rcode)) {
              settle(() => resolve(response));
              return;
            }
            lastFailure = response;
            startNext();
          },
          (err: unknown) => {
            pending--;
            lastError = err instanceof DnsError ? err : new DnsError('network', String(err));
            startNext();
          },
        );
      };
      startNext();
    });
  }
}
