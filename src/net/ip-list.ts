import ipaddr from 'ipaddr.js';
import { normalizeIp } from './ip.js';

/** An entry of an address list that does not parse, with where it stood. */
export class IpListError extends Error {
  constructor(
    readonly index: number,
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`'${entry}': ${reason}`);
  }
}

interface Range {
  entry: string;
  kind: 'ipv4' | 'ipv6';
  /** The network as a big-endian byte array, and how many leading bits count. */
  bytes: number[];
  bits: number;
}

/**
 * A list of client addresses: single addresses, CIDR blocks, and the guide's "group" form
 * `address mask`. Parsed once; `match` does no parsing of the list.
 */
export class IpList {
  private constructor(private readonly ranges: Range[]) {}

  /** Parse every entry; throws IpListError naming the first entry that does not parse. */
  static parse(entries: string[]): IpList {
    return new IpList(entries.map((e, i) => parseEntry(e, i)));
  }

  get size(): number {
    return this.ranges.length;
  }

  /** The entry the address falls in, if any. */
  match(ip: string): string | undefined {
    if (this.ranges.length === 0) return undefined;
    const addr = ipaddr.parse(normalizeIp(ip));
    const kind = addr.kind();
    const bytes = addr.toByteArray();
    for (const r of this.ranges) {
      if (r.kind === kind && prefixEqual(bytes, r.bytes, r.bits)) return r.entry;
    }
    return undefined;
  }

  /** Whether the address falls in any entry. */
  has(ip: string): boolean {
    return this.match(ip) !== undefined;
  }
}

function parseEntry(raw: string, index: number): Range {
  const entry = raw.trim().replace(/\s+/g, ' ');
  const fail = (reason: string): never => {
    throw new IpListError(index, raw, reason);
  };
  let addrText = entry;
  let bits: number | undefined;
  if (entry.includes('/')) {
    const [a, b] = entry.split('/');
    addrText = a ?? '';
    if (!/^\d{1,3}$/.test(b ?? '')) fail('prefix length must be a number');
    bits = Number(b);
  } else if (entry.includes(' ')) {
    const [a, m] = entry.split(' ');
    addrText = a ?? '';
    if (!ipaddr.IPv4.isValidFourPartDecimal(m ?? '')) fail('mask must be a dotted quad such as 255.255.255.0');
    const mask = ipaddr.IPv4.parse(m ?? '');
    const prefix = mask.prefixLengthFromSubnetMask();
    if (prefix === null) fail(`mask ${m} is not contiguous`);
    bits = prefix ?? 0;
  }
  if (!ipaddr.isValid(addrText)) fail('not an IP address, CIDR block or "address mask" pair');
  let addr = ipaddr.parse(addrText);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
    addr = (addr as ipaddr.IPv6).toIPv4Address();
    if (bits !== undefined) bits = Math.max(0, bits - 96);
  }
  const kind = addr.kind();
  const max = kind === 'ipv4' ? 32 : 128;
  if (bits === undefined) bits = max;
  if (bits > max) fail(`prefix length ${bits} is longer than ${max}`);
  return { entry: raw.trim(), kind, bytes: addr.toByteArray(), bits };
}

function prefixEqual(a: number[], b: number[], bits: number): boolean {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (a[i] !== b[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((a[i] ?? 0) & mask) === ((b[i] ?? 0) & mask);
}
