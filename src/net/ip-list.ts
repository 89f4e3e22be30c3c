import ipaddr from 'ipaddr.js';
import { parseIp, plainIpv4 } from './ip.js';

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

/** One family's entries, grouped by prefix length so a lookup is one map probe per distinct length. */
interface Family<K> {
  /** Distinct prefix lengths, longest first, so the most specific entry wins. */
  lengths: number[];
  byLength: Map<number, Map<K, string>>;
}

const FORMS = 'expected an address (192.0.2.7, 2001:db8::7), a CIDR block (198.51.100.0/24) or "address mask" (192.0.2.0 255.255.255.0)';

/**
 * A list of client addresses: single addresses, CIDR blocks, and the guide's "group" form
 * `address mask`. Parsed once into per-prefix-length maps; `match` parses only the client address.
 */
export class IpList {
  private constructor(
    private readonly v4: Family<number>,
    private readonly v6: Family<bigint>,
    readonly size: number,
  ) {}

  /** Parse every entry; throws IpListError naming the first entry that does not parse. */
  static parse(entries: readonly string[]): IpList {
    const v4: Family<number> = { lengths: [], byLength: new Map() };
    const v6: Family<bigint> = { lengths: [], byLength: new Map() };
    entries.forEach((raw, index) => {
      const { addr, bits } = parseEntry(raw, index);
      const entry = raw.trim();
      if (addr.kind() === 'ipv4') add(v4, bits, v4Prefix(v4Number(addr.toByteArray()), bits), entry);
      else add(v6, bits, v6Key(addr.toByteArray(), bits), entry);
    });
    v4.lengths.sort((a, b) => b - a);
    v6.lengths.sort((a, b) => b - a);
    return new IpList(v4, v6, entries.length);
  }

  /**
   * The entry the address falls in (the most specific one if several do), or undefined.
   * `::ffff:a.b.c.d` is looked up as `a.b.c.d`. Throws if `ip` is not an IP address.
   */
  match(ip: string): string | undefined {
    if (this.size === 0) return undefined;
    const plain = plainIpv4(ip);
    if (plain !== undefined) return this.matchV4(plain);
    const addr = parseIp(ip);
    const bytes = addr.toByteArray();
    if (addr.kind() === 'ipv4') return this.matchV4(v4Number(bytes));
    for (const bits of this.v6.lengths) {
      const hit = this.v6.byLength.get(bits)?.get(v6Key(bytes, bits));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  private matchV4(n: number): string | undefined {
    for (const bits of this.v4.lengths) {
      const hit = this.v4.byLength.get(bits)?.get(v4Prefix(n, bits));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  /** Whether the address falls in any entry. */
  has(ip: string): boolean {
    return this.match(ip) !== undefined;
  }
}

function add<K>(family: Family<K>, bits: number, key: K, entry: string): void {
  let map = family.byLength.get(bits);
  if (!map) {
    map = new Map();
    family.byLength.set(bits, map);
    family.lengths.push(bits);
  }
  // A duplicate network keeps the entry written first.
  if (!map.has(key)) map.set(key, entry);
}

function v4Number(bytes: number[]): number {
  return (((bytes[0] ?? 0) << 24) | ((bytes[1] ?? 0) << 16) | ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0)) >>> 0;
}

function v4Prefix(n: number, bits: number): number {
  return bits === 0 ? 0 : (n & (0xffffffff << (32 - bits))) >>> 0;
}

const V6_ALL = (1n << 128n) - 1n;

function v6Key(bytes: number[], bits: number): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n & ((V6_ALL << BigInt(128 - bits)) & V6_ALL);
}

function parseEntry(raw: string, index: number): { addr: ipaddr.IPv4 | ipaddr.IPv6; bits: number } {
  const fail = (reason: string): never => {
    throw new IpListError(index, raw, reason);
  };
  const parse = (text: string): ipaddr.IPv4 | ipaddr.IPv6 => {
    try {
      return parseIp(text);
    } catch {
      return fail('not an IP address, CIDR block (198.51.100.0/24) or "address mask" pair (192.0.2.0 255.255.255.0)');
    }
  };
  const parts = raw.trim().split(/\s+/);
  if (parts.length > 2 || parts[0] === '') fail(FORMS);
  const [first = '', mask] = parts;
  if (mask !== undefined) {
    const addr = parse(first);
    if (addr.kind() !== 'ipv4') fail('the "address mask" form is for IPv4; write an IPv6 block as CIDR, e.g. 2001:db8::/32');
    if (!ipaddr.IPv4.isValidFourPartDecimal(mask)) fail(`mask '${mask}' must be a dotted quad such as 255.255.255.0`);
    const bits = ipaddr.IPv4.parse(mask).prefixLengthFromSubnetMask();
    if (bits === null) fail(`mask ${mask} is not contiguous: its set bits must all lead, as in 255.255.255.0 or 255.255.240.0`);
    return { addr, bits: bits ?? 32 };
  }
  const slash = first.split('/');
  if (slash.length > 2) fail(FORMS);
  const [addrText = '', lengthText] = slash;
  const addr = parse(addrText);
  const full = addr.kind() === 'ipv4' ? 32 : 128;
  if (lengthText === undefined) return { addr, bits: full };
  if (!/^\d{1,3}$/.test(lengthText)) fail(`prefix length '${lengthText}' must be a number`);
  const length = Number(lengthText);
  // parseIp turned ::ffff:a.b.c.d into IPv4; its prefix length was written over 128 bits, 96 of them fixed.
  const mapped = addr.kind() === 'ipv4' && addrText.includes(':');
  const max = mapped ? 128 : full;
  if (length > max) fail(`prefix length ${length} is longer than ${max}`);
  if (!mapped) return { addr, bits: length };
  if (length < 96) fail('an IPv4-mapped (::ffff:) block needs a prefix length of 96 or more');
  return { addr, bits: length - 96 };
}
