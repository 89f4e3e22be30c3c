import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

const FOUR_PART = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Parse an address strictly: IPv4 only as four decimal parts (ipaddr.js would also take `127.1`,
 * `0x7f.0.0.1` and octal `010.0.0.1`, forms no administrator means in a list), IPv6 in any RFC 4291
 * form, optionally in brackets. IPv4-mapped IPv6 becomes the IPv4 address. Throws on anything else.
 */
export function parseIp(s: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const n = plainIpv4(s);
  if (n !== undefined) return new ipaddr.IPv4([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  const text = s.trim().replace(/^\[(.*)\]$/, '$1');
  if (text.includes(':')) {
    // node:net's check is several times faster than ipaddr.js's own, and this runs per connection.
    if (!isIPv6(text)) throw new Error(`'${s}' is not an IP address`);
    const v6 = ipaddr.IPv6.parse(text);
    return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
  }
  const m = FOUR_PART.exec(text);
  if (!m) throw new Error(`'${s}' is not an IP address`);
  const octets = m.slice(1).map((part) => {
    if (part.length > 1 && part.startsWith('0')) throw new Error(`'${s}' is not an IP address: leading zeros are ambiguous (octal or decimal?)`);
    return Number(part);
  });
  if (octets.some((o) => o > 255)) throw new Error(`'${s}' is not an IP address: a part is above 255`);
  return new ipaddr.IPv4(octets);
}

/**
 * An IPv4 address written exactly in its canonical form (four decimal parts, no leading zeros, none
 * above 255, nothing around it) as a 32-bit number; undefined for any other text, valid or not.
 * The form every client address arrives in, read without a regular expression or an allocation:
 * it runs several times per connection (the lists, the DNSBL query names).
 */
export function plainIpv4(s: string): number | undefined {
  const length = s.length;
  if (length < 7 || length > 15) return undefined;
  let n = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= length; i++) {
    const c = i < length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0) return undefined;
      n = n * 256 + part;
      parts += 1;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return undefined;
      part = part * 10 + (c - 48);
      digits += 1;
      if (part > 255) return undefined;
    } else {
      return undefined;
    }
  }
  return parts === 4 ? n : undefined;
}

/** Validate a client address and give its canonical form: `::ffff:a.b.c.d` becomes `a.b.c.d`, IPv6 is compressed lower case. */
export function normalizeIp(s: string): string {
  return plainIpv4(s) !== undefined ? s : parseIp(s).toString();
}

/** Whether the address is IPv4 (an IPv4-mapped IPv6 address counts as IPv4); false for junk. */
export function isIpv4(ip: string): boolean {
  try {
    return parseIp(ip).kind() === 'ipv4';
  } catch {
    return false;
  }
}
