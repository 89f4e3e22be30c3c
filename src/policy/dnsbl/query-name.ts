import ipaddr from 'ipaddr.js';

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

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
  const bare = zone.endsWith('.') ? zone.slice(0, -1) : zone;
  // Fast path for the common case, a plain dotted quad: this runs once per session and per zone.
  const quad = DOTTED_QUAD.exec(ip);
  if (quad && quad.slice(1).every((o) => Number(o) <= 255 && (o === '0' || !o.startsWith('0')))) {
    return `${quad[4]}.${quad[3]}.${quad[2]}.${quad[1]}.${bare}`;
  }
  const addr = parseClientAddress(ip);
  if (addr.kind() === 'ipv4') return `${[...addr.toByteArray()].reverse().join('.')}.${bare}`;
  const nibbles: string[] = [];
  for (const byte of addr.toByteArray()) nibbles.push((byte >> 4).toString(16), (byte & 0x0f).toString(16));
  return `${nibbles.reverse().join('.')}.${bare}`;
}
