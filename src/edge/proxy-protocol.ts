/**
 * PROXY protocol (HAProxy spec, versions 1 and 2): reads the header a load balancer puts in front
 * of the client's bytes, and hands back the client address it reports.
 */
import net from 'node:net';
import { normalizeIp } from '../net/ip.js';
import { reply, SmtpError } from '../net/smtp-reply.js';

/** What the balancer said about the connection it forwarded. */
export interface ProxyInfo {
  /** The client's address; the socket's own peer when `local` is true. */
  sourceAddress: string;
  sourcePort: number;
  destAddress?: string;
  destPort?: number;
  /**
   * True when the header carried no client address (v1 `UNKNOWN`, v2 `LOCAL`, or a v2 family other
   * than TCP over IPv4/IPv6): the connection's own endpoints stand for the client.
   */
  local: boolean;
  /** Set for a v2 `LOCAL` header: the balancer opened this connection itself (its health checks), relaying no client. */
  command?: 'LOCAL';
}

/** A PROXY header that was malformed, oversized, or did not arrive in time, with the reply it becomes. */
export class ProxyProtocolError extends SmtpError {
  constructor(message: string, code = 421, enhanced = '4.7.0') {
    super(reply(code, enhanced, message), message);
    this.name = 'ProxyProtocolError';
  }
}

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The spec's worst case: `PROXY TCP6 <39> <39> 65535 65535\r\n`. */
const V1_MAX_LENGTH = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_LENGTH = 16;
/** Addresses plus TLVs; balancers send far less, and a bound keeps a hostile peer from making us buffer 64 KiB. */
export const V2_MAX_PAYLOAD = 2048;

type Parsed = { info: ProxyInfo; length: number } | 'incomplete';

/**
 * Reads one PROXY header (v1 or v2) from a socket that has delivered nothing else yet. Consumes
 * exactly the header: any bytes after it are pushed back with `socket.unshift` for the next reader.
 * Rejects with ProxyProtocolError when the header is malformed, too long, cut short, or late.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<ProxyInfo> {
  return new Promise<ProxyInfo>((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;

    const finish = (outcome: { info: ProxyInfo } | { error: Error }, rest?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.removeListener('error', onError);
      if ('info' in outcome) {
        if (rest !== undefined && rest.length > 0) socket.unshift(rest);
        resolve(outcome.info);
      } else {
        reject(outcome.error);
      }
    };

    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (!settled && (chunk = socket.read() as Buffer | null) !== null) {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        let parsed: Parsed;
        try {
          parsed = parseProxyHeader(buffered, socket);
        } catch (err) {
          finish({ error: err instanceof Error ? err : new Error(String(err)) });
          return;
        }
        if (parsed !== 'incomplete') finish({ info: parsed.info }, buffered.subarray(parsed.length));
      }
    };
    const onEnd = (): void => finish({ error: new ProxyProtocolError('Connection closed before the PROXY header was complete') });
    const onError = (err: Error): void => finish({ error: new ProxyProtocolError(`Connection failed while reading the PROXY header: ${err.message}`) });
    const timer = setTimeout(
      () => finish({ error: new ProxyProtocolError('Timed out waiting for the PROXY header', 421, '4.4.2') }),
      timeoutMs,
    );

    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    // Data may already sit in the buffer from before we were called; 'readable' would not fire again for it.
    onReadable();
  });
}

/**
 * Parses a PROXY header at the start of `buf`. Returns 'incomplete' when more bytes are needed and
 * throws ProxyProtocolError as soon as the bytes cannot be the start of a valid header.
 */
export function parseProxyHeader(buf: Buffer, socket?: net.Socket): Parsed {
  if (buf.length === 0) return 'incomplete';
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf, socket);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf, socket);
  throw new ProxyProtocolError('Expected a PROXY protocol header');
}

function startsWithPrefix(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(buf: Buffer, socket?: net.Socket): Parsed {
  if (!startsWithPrefix(buf, V1_PREFIX)) throw new ProxyProtocolError('Expected a PROXY protocol header');
  const end = buf.subarray(0, V1_MAX_LENGTH).indexOf('\r\n', 0, 'latin1');
  if (end === -1) {
    if (buf.length >= V1_MAX_LENGTH) throw new ProxyProtocolError('PROXY v1 header longer than 107 bytes');
    // A bare LF inside the window can never become a valid header.
    if (buf.subarray(0, V1_MAX_LENGTH).includes(0x0a)) throw new ProxyProtocolError('Malformed PROXY v1 header');
    return 'incomplete';
  }
  const line = buf.subarray(0, end).toString('latin1');
  const length = end + 2;
  const fields = line.split(' ');
  if (fields[1] === 'UNKNOWN') return { info: localInfo(socket), length };
  if (fields.length !== 6) throw new ProxyProtocolError('Malformed PROXY v1 header');
  const [, proto, src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (family === 0) throw new ProxyProtocolError(`Unsupported PROXY v1 protocol '${proto}'`);
  // node:net takes a zone (`fe80::1%eth0`); a zone names one of the balancer's interfaces, never a client.
  if (net.isIP(src) !== family || net.isIP(dst) !== family || `${src}${dst}`.includes('%')) {
    throw new ProxyProtocolError(`Malformed ${proto} address in PROXY v1 header`);
  }
  return {
    info: {
      sourceAddress: family === 6 ? normalizeIp(src) : src,
      sourcePort: v1Port(sport),
      destAddress: family === 6 ? normalizeIp(dst) : dst,
      destPort: v1Port(dport),
      local: false,
    },
    length,
  };
}

function v1Port(text: string): number {
  // The spec forbids leading zeros; accepting them would let one port have many spellings.
  if (!/^(0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) {
    throw new ProxyProtocolError('Malformed port in PROXY v1 header');
  }
  return Number(text);
}

function parseV2(buf: Buffer, socket?: net.Socket): Parsed {
  if (!startsWithPrefix(buf, V2_SIGNATURE)) throw new ProxyProtocolError('Expected a PROXY protocol header');
  if (buf.length < V2_FIXED_LENGTH) return 'incomplete';
  const versionCommand = buf[12] as number;
  const familyProtocol = buf[13] as number;
  const payloadLength = buf.readUInt16BE(14);
  if (versionCommand >> 4 !== 2) throw new ProxyProtocolError('Unsupported PROXY protocol version');
  const command = versionCommand & 0x0f;
  if (command > 1) throw new ProxyProtocolError('Unsupported PROXY v2 command');
  if (payloadLength > V2_MAX_PAYLOAD) throw new ProxyProtocolError(`PROXY v2 header longer than ${V2_MAX_PAYLOAD} bytes`);
  const length = V2_FIXED_LENGTH + payloadLength;
  if (buf.length < length) return 'incomplete';
  // LOCAL: the balancer's own health check; the address block, if any, is to be ignored.
  if (command === 0) return { info: { ...localInfo(socket), command: 'LOCAL' }, length };

  const family = familyProtocol >> 4;
  const transport = familyProtocol & 0x0f;
  if (family === 0 || family === 3) return { info: localInfo(socket), length };
  if (family > 3) throw new ProxyProtocolError('Unsupported PROXY v2 address family');
  if (transport !== 1) throw new ProxyProtocolError('Unsupported PROXY v2 transport (only TCP is relayed)');
  const payload = buf.subarray(V2_FIXED_LENGTH, length);
  const addressLength = family === 1 ? 4 : 16;
  // Two addresses and two ports; any TLVs after them are skipped.
  if (payload.length < addressLength * 2 + 4) throw new ProxyProtocolError('PROXY v2 address block too short');
  const src = formatAddress(payload.subarray(0, addressLength));
  const dst = formatAddress(payload.subarray(addressLength, addressLength * 2));
  const sourcePort = payload.readUInt16BE(addressLength * 2);
  const destPort = payload.readUInt16BE(addressLength * 2 + 2);
  return { info: { sourceAddress: src, sourcePort, destAddress: dst, destPort, local: false }, length };
}

function formatAddress(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return normalizeIp(groups.join(':'));
}

function localInfo(socket?: net.Socket): ProxyInfo {
  return { sourceAddress: socket?.remoteAddress ?? '', sourcePort: socket?.remotePort ?? 0, local: true };
}
