import ipaddr from 'ipaddr.js';

/** The client address as the DNSBL rules see it: IPv4-mapped IPv6 becomes plain IPv4. */
export function parseClientAddress(ip: string): ipaddr.IPv4 | ipaddr.IPv6 {
  if (!ipaddr.isValid(ip)) throw new Error(`not an IP address: ${ip}`);
  return ipaddr.process(ip);
}

/**
 * The name to ask a DNSBL zone about `ip` (RFC 5782): reversed octets for IPv4, the 32 nibbles of
 * the full address reversed for IPv6, then the zone.
 */
export function dnsblQueryName(ip: string, zone: string): string {
  const addr = parseClientAddress(ip);
  const bare = zone.replace(/\.$/, '');
  if (addr.kind() === 'ipv4') return `${[...addr.toByteArray()].reverse().join('.')}.${bare}`;
  const nibbles: string[] = [];
  for (const byte of addr.toByteArray()) nibbles.push((byte >> 4).toString(16), (byte & 0x0f).toString(16));
  return `${nibbles.reverse().join('.')}.${bare}`;
}
