/** The original client's attributes as XFORWARD or XCLIENT carry them to the back end. */
import { xtext } from './xtext.js';

/** The original client, passed on with XFORWARD or XCLIENT when the back end offers one. */
export interface ForwardedClient {
  /** The client's IP address (IPv4 dotted quad or IPv6). */
  address: string;
  /** Reverse-DNS name, when it was looked up. */
  hostname?: string;
  helo?: string;
  proto: 'SMTP' | 'ESMTP';
}

const UNAVAILABLE = '[UNAVAILABLE]';

/** The attribute names of the last XFORWARD/XCLIENT keyword line read: every connection to one back end offers the same. */
let lastOffered: { line: string; names: Set<string> } = { line: '', names: new Set() };

function offeredNames(offered: string): Set<string> {
  if (offered !== lastOffered.line) lastOffered = { line: offered, names: new Set(offered.toUpperCase().split(/\s+/)) };
  return lastOffered.names;
}

/** The attributes last formatted for each client object: an edge session asks again for each transaction. */
const formatted = new WeakMap<ForwardedClient, { offered: string; line: string }>();

/**
 * `NAME=… ADDR=… PROTO=… HELO=…`, only the attributes the back end named in its EHLO (`offered`), values
 * as xtext. A client object is never changed once made (the edge makes a new one when its HELO does),
 * so its line is formatted once per offer.
 */
export function forwardAttributes(client: ForwardedClient, offered: string): string {
  const known = formatted.get(client);
  if (known?.offered === offered) return known.line;
  const line = formatAttributes(client, offered);
  formatted.set(client, { offered, line });
  return line;
}

function formatAttributes(client: ForwardedClient, offered: string): string {
  const allowed = offeredNames(offered);
  const parts: string[] = [];
  if (allowed.has('NAME')) parts.push(`NAME=${client.hostname === undefined ? UNAVAILABLE : xtext(client.hostname)}`);
  // An IP address is IPv6 when it has a colon (net.isIPv6's regular expression cost more than the rest together).
  if (allowed.has('ADDR')) parts.push(`ADDR=${xtext(client.address.includes(':') ? `IPV6:${client.address}` : client.address)}`);
  if (allowed.has('PROTO')) parts.push(`PROTO=${client.proto}`);
  if (allowed.has('HELO')) parts.push(`HELO=${client.helo === undefined ? UNAVAILABLE : xtext(client.helo)}`);
  return parts.join(' ');
}
