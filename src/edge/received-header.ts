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

/** The last second formatted, and the field's end with it: a busy edge stamps many messages a second with the same text. */
let formatted = { second: Number.NaN, text: '', end: Buffer.alloc(0) };

function formattedAt(d: Date): typeof formatted {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== formatted.second) {
    const text = d.toUTCString().replace(/GMT$/, '+0000');
    formatted = { second, text, end: Buffer.from(`;\r\n\t${text}\r\n`, 'latin1') };
  }
  return formatted;
}

/** RFC 5322 date-time in UTC, e.g. `Tue, 05 Mar 2024 10:00:00 +0000`. */
export function rfc5322Date(d: Date): string {
  return formattedAt(d).text;
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

const FOR_OPEN = Buffer.from('\r\n\tfor <', 'latin1');
const FOR_CLOSE = 0x3e;

/**
 * The folded field's bytes, CRLF-terminated, after its `opening` (receivedOpening's text as UTF-8):
 * copied together into one buffer. A string joined per message was flattened and encoded as UTF-8
 * again each time; the opening is encoded once per hop, the date's line once per second, and the
 * recipient, printable ASCII once cleaned, is written as one byte a character.
 */
export function receivedField(opening: Buffer, recipient: string | undefined, date: Date): Buffer {
  const end = formattedAt(date).end;
  const rcpt = recipient ? clean(recipient) : undefined;
  const out = Buffer.allocUnsafe(opening.length + (rcpt === undefined ? 0 : FOR_OPEN.length + rcpt.length + 1) + end.length);
  out.set(opening, 0);
  let at = opening.length;
  if (rcpt !== undefined) {
    out.set(FOR_OPEN, at);
    at += FOR_OPEN.length;
    // Byte by byte: a few dozen, each below 0x7f, cost less than a call to encode them.
    for (let i = 0; i < rcpt.length; i++) out[at++] = rcpt.charCodeAt(i);
    out[at++] = FOR_CLOSE;
  }
  out.set(end, at);
  return out;
}

/** The folded `Received:` field, CRLF-terminated; no client-supplied value can break a line. */
export function receivedHeader(info: ReceivedInfo): string {
  return receivedField(Buffer.from(receivedOpening(info)), info.recipient, info.date).toString();
}
