/** The edge's own trace field (RFC 5321 section 4.4), prepended to every message it relays. */

/** What the Received: field records about the hop from the client to the edge, the same for each message of a session while its HELO name and protocol stay. */
export interface ReceivedHop {
  helo?: string;
  /** Reverse-DNS name, when the listener looks it up. */
  clientHostname?: string;
  clientIp: string;
  by: string;
  /** The session id, so the field can be matched to the logs. */
  id: string;
  /** `ESMTP`, `ESMTPS`, `SMTP`... */
  protocol: string;
}

/** The hop and the message. */
export interface ReceivedInfo extends ReceivedHop {
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

/** What no client-supplied value in the field may be: anything but printable ASCII becomes `?`, so no value can break a line. */
function clean(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, '?');
}

/** The field up to its `for` clause: formatted once per hop, as it is the same for each message the hop carries. */
export function receivedOpening(hop: ReceivedHop): string {
  const ip = hop.clientIp.includes(':') ? `IPv6:${hop.clientIp}` : hop.clientIp;
  const from = `from ${clean(hop.helo ?? 'unknown')} (${hop.clientHostname ? `${clean(hop.clientHostname)} ` : ''}[${ip}])`;
  return `Received: ${from}\r\n\tby ${hop.by} (Portcullis) with ${hop.protocol} id ${hop.id}`;
}

/** The folded field, CRLF-terminated, after its `opening` (receivedOpening). */
export function receivedField(opening: string, recipient: string | undefined, date: Date): string {
  const forClause = recipient ? `\r\n\tfor <${clean(recipient)}>` : '';
  return `${opening}${forClause};\r\n\t${rfc5322Date(date)}\r\n`;
}

/** The folded `Received:` field, CRLF-terminated; no client-supplied value can break a line. */
export function receivedHeader(info: ReceivedInfo): string {
  return receivedField(receivedOpening(info), info.recipient, info.date);
}
