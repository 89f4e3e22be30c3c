/** The edge's own trace field (RFC 5321 section 4.4), prepended to every message it relays. */

/** What the Received: field records about the hop from the client to the edge. */
export interface ReceivedInfo {
  helo?: string;
  /** Reverse-DNS name, when the listener looks it up. */
  clientHostname?: string;
  clientIp: string;
  by: string;
  /** The session id, so the field can be matched to the logs. */
  id: string;
  /** `ESMTP`, `ESMTPS`, `SMTP`... */
  protocol: string;
  /** Only when the message has exactly one recipient (a `for` clause must not disclose Bcc). */
  recipient?: string;
  date: Date;
}

/** The last second formatted: a busy edge stamps many messages a second with the same text. */
let formatted = { second: Number.NaN, text: '' };

/** RFC 5322 date-time in UTC, e.g. `Tue, 05 Mar 2024 10:00:00 +0000`. */
export function rfc5322Date(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== formatted.second) formatted = { second, text: d.toUTCString().replace(/GMT$/, '+0000') };
  return formatted.text;
}

/** The folded `Received:` field, CRLF-terminated; no client-supplied value can break a line. */
export function receivedHeader(info: ReceivedInfo): string {
  const clean = (s: string): string => s.replace(/[^\x21-\x7e]/g, '?');
  const ip = info.clientIp.includes(':') ? `IPv6:${info.clientIp}` : info.clientIp;
  const from = `from ${clean(info.helo ?? 'unknown')} (${info.clientHostname ? `${clean(info.clientHostname)} ` : ''}[${ip}])`;
  const forClause = info.recipient ? `\r\n\tfor <${clean(info.recipient)}>` : '';
  return `Received: ${from}\r\n\tby ${info.by} (Portcullis) with ${info.protocol} id ${info.id}${forClause};\r\n\t${rfc5322Date(info.date)}\r\n`;
}
