/** The original client's attributes as XFORWARD or XCLIENT carry them to the back end. */
import net from 'node:net';
import { xtext } from './xtext.js';

/** The original client, passed on with XFORWARD or XCLIENT when the back end offers one. */
export interface ForwardedClient {
  address: string;
  /** Reverse-DNS name, when it was looked up. */
  hostname?: string;
  helo?: string;
  proto: 'SMTP' | 'ESMTP';
}

/** `NAME=… ADDR=… PROTO=… HELO=…`, only the attributes the back end named in its EHLO (`offered`), values as xtext. */
export function forwardAttributes(client: ForwardedClient, offered: string): string {
  const allowed = new Set(offered.toUpperCase().split(/\s+/));
  const all: [string, string][] = [
    ['NAME', client.hostname ?? '[UNAVAILABLE]'],
    ['ADDR', net.isIPv6(client.address) ? `IPV6:${client.address}` : client.address],
    ['PROTO', client.proto],
    ['HELO', client.helo ?? '[UNAVAILABLE]'],
  ];
  return all
    .filter(([k]) => allowed.has(k))
    .map(([k, v]) => `${k}=${v === '[UNAVAILABLE]' ? v : xtext(v)}`)
    .join(' ');
}
