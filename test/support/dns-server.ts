/** A real, in-process authoritative DNS server on loopback for tests (UDP, dns-packet). */
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';

/** How the server treats a question: answer it, never answer, or answer SERVFAIL. */
export type ServerMode = 'answer' | 'blackhole' | 'servfail';

export interface TestRecords {
  A?: string[];
  AAAA?: string[];
  TXT?: string[];
  MX?: { exchange: string; preference: number }[];
  PTR?: string[];
  /** TTL of this name's records (default: the server's `ttl`). */
  ttl?: number;
  /** Overrides the server's mode for this name. */
  mode?: ServerMode;
  /** Answer this long after the question arrives. */
  delayMs?: number;
  /** Set the TC bit on answers for this name. */
  truncate?: boolean;
  /** First send a forged answer (wrong id, A 127.0.0.66), then the real one. */
  spoof?: boolean;
}

export interface DnsServerOptions {
  records?: Record<string, TestRecords>;
  mode?: ServerMode;
  /** Default TTL of positive answers (300). */
  ttl?: number;
  /** SOA in the authority section of negative answers: its TTL and MINIMUM (both default 60). */
  soa?: { ttl?: number; minimum?: number };
  /** Also listen on ::1 (same port when free, else another). */
  ipv6?: boolean;
}

export interface Question {
  name: string;
  type: string;
  /** The query id and the client's source port, to check they are random. */
  id: number;
  port: number;
}

export interface TestDnsServer {
  /** "127.0.0.1:port" — ready to put in `dns.servers`. */
  address: string;
  /** "[::1]:port" when started with `ipv6: true`. */
  address6?: string;
  port: number;
  /** Every name asked, in arrival order (lower case, no trailing dot). */
  queries: string[];
  /** Every question with its type, in arrival order. */
  questions: Question[];
  /** Replace the whole record set. */
  setRecords(records: Record<string, TestRecords>): void;
  setMode(mode: ServerMode): void;
  close(): Promise<void>;
}

function norm(name: string): string {
  return name.replace(/\.$/, '').toLowerCase();
}

/** A TXT record's text as the 255-byte character-strings DNS carries it in (RFC 1035 3.3.14; DKIM keys are longer). */
function characterStrings(text: string): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 255) out.push(bytes.subarray(at, at + 255));
  return out.length > 0 ? out : [Buffer.alloc(0)];
}

function soaOwner(name: string): string {
  const labels = name.split('.');
  return labels.length > 2 ? labels.slice(-2).join('.') : name;
}

/** Start a server on 127.0.0.1 (and optionally ::1), port 0. */
export async function startDnsServer(options: DnsServerOptions = {}): Promise<TestDnsServer> {
  let records = new Map<string, TestRecords>();
  const setRecords = (r: Record<string, TestRecords>): void => {
    records = new Map(Object.entries(r).map(([k, v]) => [norm(k), v]));
  };
  setRecords(options.records ?? {});
  let mode: ServerMode = options.mode ?? 'answer';
  const defaultTtl = options.ttl ?? 300;
  const soaTtl = options.soa?.ttl ?? 60;
  const soaMinimum = options.soa?.minimum ?? 60;
  const queries: string[] = [];
  const questions: Question[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const respond = (socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const q = query.questions?.[0];
    if (!q) return;
    const name = norm(q.name);
    queries.push(name);
    questions.push({ name, type: q.type, id: query.id ?? 0, port: rinfo.port });
    const entry = records.get(name);
    const effective = entry?.mode ?? mode;
    if (effective === 'blackhole') return;

    const answers: dnsPacket.Answer[] = [];
    let rcode = 0;
    if (effective === 'servfail') {
      rcode = 2;
    } else if (entry) {
      const ttl = entry.ttl ?? defaultTtl;
      if (q.type === 'A') for (const a of entry.A ?? []) answers.push({ type: 'A', name: q.name, ttl, data: a });
      if (q.type === 'AAAA') for (const a of entry.AAAA ?? []) answers.push({ type: 'AAAA', name: q.name, ttl, data: a });
      if (q.type === 'TXT') for (const t of entry.TXT ?? []) answers.push({ type: 'TXT', name: q.name, ttl, data: characterStrings(t) });
      if (q.type === 'MX') for (const m of entry.MX ?? []) answers.push({ type: 'MX', name: q.name, ttl, data: m });
      if (q.type === 'PTR') for (const p of entry.PTR ?? []) answers.push({ type: 'PTR', name: q.name, ttl, data: p });
    } else if (![...records.keys()].some((k) => k.endsWith(`.${name}`))) {
      rcode = 3; // NXDOMAIN; an empty non-terminal (a parent of a known name) gets NODATA instead.
    }
    const authorities: dnsPacket.Answer[] =
      effective === 'answer' && answers.length === 0
        ? [
            {
              type: 'SOA',
              name: soaOwner(name),
              ttl: soaTtl,
              data: {
                mname: `ns.${soaOwner(name)}`,
                rname: `hostmaster.${soaOwner(name)}`,
                serial: 1,
                refresh: 3600,
                retry: 600,
                expire: 86400,
                minimum: soaMinimum,
              },
            },
          ]
        : [];
    const truncated = entry?.truncate ? dnsPacket.TRUNCATED_RESPONSE : 0;
    const reply = dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | truncated | rcode,
      questions: [q],
      answers,
      authorities,
    });
    const send = (): void => {
      if (entry?.spoof) {
        const forged = dnsPacket.encode({
          type: 'response',
          id: ((query.id ?? 0) + 1) % 65536,
          flags: dnsPacket.AUTHORITATIVE_ANSWER,
          questions: [q],
          answers: [{ type: 'A', name: q.name, ttl: 86400, data: '127.0.0.66' }],
        });
        socket.send(forged, rinfo.port, rinfo.address);
      }
      socket.send(reply, rinfo.port, rinfo.address);
    };
    if (entry?.delayMs) {
      const t = setTimeout(() => {
        timers.delete(t);
        send();
      }, entry.delayMs);
      timers.add(t);
    } else {
      send();
    }
  };

  const bind = (family: 'udp4' | 'udp6', host: string, port: number): Promise<dgram.Socket> =>
    new Promise((resolve, reject) => {
      const socket = dgram.createSocket(family);
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        socket.on('message', (msg, rinfo) => respond(socket, msg, rinfo));
        resolve(socket);
      });
    });

  const v4 = await bind('udp4', '127.0.0.1', 0);
  const port = (v4.address() as AddressInfo).port;
  const sockets = [v4];
  let address6: string | undefined;
  if (options.ipv6) {
    const v6 = await bind('udp6', '::1', port).catch(() => bind('udp6', '::1', 0));
    sockets.push(v6);
    address6 = `[::1]:${(v6.address() as AddressInfo).port}`;
  }

  const server: TestDnsServer = {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    questions,
    setRecords,
    setMode: (m) => {
      mode = m;
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
  if (address6) server.address6 = address6;
  return server;
}

/** A loopback UDP port with nothing listening on it: queries there draw ICMP port-unreachable. */
export async function refusedPort(host = '127.0.0.1'): Promise<number> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => resolve());
  });
  const port = (socket.address() as AddressInfo).port;
  await new Promise<void>((r) => socket.close(() => r()));
  return port;
}
