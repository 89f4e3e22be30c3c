/**
 * `host:port` endpoints, the one parser for every key that names one (listeners, the back end,
 * metrics, the engine's listen and admin addresses, DNS servers, smart hosts). An IPv6 host is
 * written in brackets, `[::1]:25`, because its own colons would make the port ambiguous.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Endpoint {
  /** The host without brackets: a name, an IPv4 or an IPv6 address. */
  host: string;
  port: number;
}

/** `host:port` or `[v6]:port`, at most five port digits: the shape the schema checks, and the parts read here. */
export const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/;

/** `smtp://host:port`, an optional trailing slash; the host holds no slash. */
export const SMTP_URL = /^smtp:\/\/(?:\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}\/?$/;

/** The endpoint `value` names, or undefined when it is not `host:port` with a port up to 65535. */
export function endpointOf(value: string): Endpoint | undefined {
  const m = HOST_PORT.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || port > 65535) return undefined;
  return { host, port };
}

/** The endpoint `value` names; the error names the key it was read from, e.g. `metrics.listen`. */
export function parseEndpoint(value: string, key: string): Endpoint {
  const endpoint = endpointOf(value);
  if (!endpoint) throw new Error(`${key}: expected host:port, got '${value}'`);
  return endpoint;
}

/** The `host:port` of an `smtp://host:port/` URL. */
export function hostPortOfSmtpUrl(url: string): string {
  return url.replace(/^smtp:\/\//, '').replace(/\/$/, '');
}

/** The endpoint of an `smtp://host:port` URL (the `backend.url` key). */
export function parseSmtpUrl(url: string, key: string): Endpoint {
  const endpoint = SMTP_URL.test(url) ? endpointOf(hostPortOfSmtpUrl(url)) : undefined;
  if (!endpoint) throw new Error(`${key}: expected smtp://host:port, got '${url}'`);
  return endpoint;
}

/** `host:port`, with an IPv6 host in brackets: the form the parsers above read back. */
export function formatEndpoint({ host, port }: Endpoint): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * What is wrong with an endpoint that has the `host:port` shape: a port out of range, a malformed
 * address literal, or (when only an IP will do, as for a DNS server) a name.
 */
export function endpointProblems(value: string, hostKind: 'any' | 'ip'): string[] {
  const m = HOST_PORT.exec(value);
  if (!m?.[3]) return [`expected host:port, got '${value}'`];
  const [, v6, name = '', port] = m;
  const out: string[] = [];
  if (Number(port) > 65535) out.push(`port ${port} is out of range (0-65535)`);
  if (v6 !== undefined) {
    if (!isIPv6(v6)) out.push(`'[${v6}]' is not an IPv6 address`);
  } else if (/^[\d.]+$/.test(name)) {
    if (!isIPv4(name)) out.push(`'${name}' is not an IPv4 address`);
  } else if (hostKind === 'ip') {
    out.push(`'${name}' must be an IP address (a DNS server cannot be found by name)`);
  }
  return out;
}
