import ipaddr from 'ipaddr.js';
import { parseIp } from './ip.js';

const DOTTED = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** How many leading bits of an address name its network, per family. */
export interface NetworkPrefix {
  ipv4: number;
  ipv6: number;
}

/**
 * The network a client address belongs to, in CIDR form (`192.0.2.0/24`, `2001:db8::/48`): the key
 * per-network limits and greylisting triplets count by, so that a sender rotating through the
 * addresses of one block is still one sender.
 */
export function networkOf(ip: string, prefix: NetworkPrefix): string {
  // The common case, a normalized IPv4 address, without building an address object (it runs several times a session).
  if (DOTTED.test(ip)) {
    const n = ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
    const bits = prefix.ipv4;
    const masked = bits === 0 ? 0 : (n - (n % 2 ** (32 - bits))) >>> 0;
    return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${bits}`;
  }
  const addr = parseIp(ip);
  const bits = addr.kind() === 'ipv4' ? prefix.ipv4 : prefix.ipv6;
  const bytes = addr.toByteArray().map((b, i) => b & ((0xff << (8 - Math.max(0, Math.min(8, bits - i * 8)))) & 0xff));
  return `${ipaddr.fromByteArray(bytes).toString()}/${bits}`;
}
