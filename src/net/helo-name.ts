/**
 * What a HELO/EHLO argument may be: a host name (letters, digits, `-` and the `_` of real Windows host
 * names; labels of at most 63, the whole at most 255) or an IP address, bare or as an RFC 5321 address
 * literal. Plain ASCII only: the name is passed on to the back end (XFORWARD, `Received:`), where an
 * arbitrary string could pose as something else.
 */
import net from 'node:net';

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

export function isHeloName(arg: string): boolean {
  // Only an IPv6 address has a colon outside brackets, and a dotted IPv4 address is a name of valid
  // labels: net.isIP's IPv6 regular expression ran on every name, several times the rest's cost.
  if (arg.includes(':') && !arg.startsWith('[')) return net.isIPv6(arg);
  const literal = /^\[(?:IPv6:(.+)|(.+))\]$/i.exec(arg);
  if (literal) return literal[1] !== undefined ? net.isIPv6(literal[1]) : net.isIPv4(literal[2] ?? '');
  const name = arg.endsWith('.') ? arg.slice(0, -1) : arg;
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => LABEL.test(label));
}
