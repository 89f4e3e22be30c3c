import { parseIp, plainIpv4 } from '../net/ip.js';

/**
 * The name to ask a DNSBL zone about `ip` (RFC 5782): reversed octets for IPv4, the 32 nibbles of
 * the full address reversed for IPv6, then the zone.
 */
export function dnsblQueryName(ip: string, zone: string): string {
  const bare = zone.endsWith('.') ? zone.slice(0, -1) : zone;
  const n = plainIpv4(ip);
  if (n !== undefined) return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}.${bare}`;
  const addr = parseIp(ip);
  if (addr.kind() === 'ipv4') return `${[...addr.toByteArray()].reverse().join('.')}.${bare}`;
  const nibbles: string[] = [];
  for (const byte of addr.toByteArray()) nibbles.push((byte >> 4).toString(16), (byte & 0x0f).toString(16));
  return `${nibbles.reverse().join('.')}.${bare}`;
}
