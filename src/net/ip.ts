import ipaddr from 'ipaddr.js';

/** Validate a client address and give its canonical form; `::ffff:a.b.c.d` becomes `a.b.c.d`. */
export function normalizeIp(s: string): string {
  const text = s.trim().replace(/^\[(.*)\]$/, '$1');
  if (!ipaddr.isValid(text)) throw new Error(`'${s}' is not an IP address`);
  const parsed = ipaddr.parse(text);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address().toString();
  }
  return parsed.toString();
}

/** Whether the (already normalised) address is IPv4. */
export function isIpv4(ip: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(ip);
}
