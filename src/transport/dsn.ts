import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { formatResult } from './delivery-result.js';
import type { Envelope, RecipientResult } from './types.js';

/** One recipient's line in a report. */
export type DsnRecipient = RecipientResult & {
  action: 'failed' | 'delayed' | 'delivered' | 'relayed';
  /** ORCPT (decoded), e.g. `rfc822;list@example.com`; becomes Original-Recipient. */
  orcpt?: string;
};

/** What a delivery status notification is built from. */
export interface DsnOptions {
  /** This host's name, for Reporting-MTA and the Message-ID. */
  reportingMta: string;
  original: Envelope;
  originalContentPath: string;
  results: DsnRecipient[];
  /** The report's From:, e.g. `Mail Delivery System <MAILER-DAEMON@mx.example.com>`. */
  from: string;
  now: Date;
  /** When the engine gives up on the delayed recipients (RFC 3464 Will-Retry-Until). */
  willRetryUntil?: Date;
}

const CRLF = '\r\n';

/**
 * Builds an RFC 3464 delivery status notification as a complete RFC 5322 message:
 * `multipart/report; report-type=delivery-status` with a human-readable part, the
 * `message/delivery-status` part, and the original message (`message/rfc822`) or, with RET=HDRS,
 * only its header (`text/rfc822-headers`). Without RET, failures return the full message and
 * delay/success reports only the header. The report goes to the original envelope sender; the caller
 * sends it with the blank sender <> and never sends one to <>.
 */
export async function buildDsn(opts: DsnOptions): Promise<Buffer> {
  const { original, results, now } = opts;
  // Latin-1 maps each byte to one character and back, so the returned message is the bytes we received, whatever their charset.
  const raw = toCrlf(await readFile(opts.originalContentPath, 'latin1'));
  const headerEnd = raw.indexOf(CRLF + CRLF);
  const headerBlock = headerEnd < 0 ? raw : raw.slice(0, headerEnd + 2);
  const anyFailed = results.some((r) => r.action === 'failed');
  const full = original.ret === 'FULL' || (original.ret === undefined && anyFailed);
  const boundary = `=_portcullis_${randomBytes(12).toString('hex')}`;
  const subject = originalSubject(headerBlock);
  const kind = anyFailed
    ? 'Undeliverable'
    : results.some((r) => r.action === 'delayed')
      ? 'Delivery delayed'
      : results.some((r) => r.action === 'relayed')
        ? 'Relayed'
        : 'Delivered';

  const header = [
    `From: ${oneLine(opts.from)}`,
    `To: <${oneLine(original.mailFrom)}>`,
    `Subject: ${kind}${subject ? `: ${subject}` : ''}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${now.getTime()}.${randomBytes(6).toString('hex')}@${oneLine(opts.reportingMta)}>`,
    'MIME-Version: 1.0',
    'Auto-Submitted: auto-replied',
    `Content-Type: multipart/report; report-type=delivery-status;${CRLF}\tboundary="${boundary}"`,
  ];

  const returned = full ? raw : headerBlock;
  const parts: { text: string; bytes?: string }[] = [
    { text: ['Content-Type: text/plain; charset=us-ascii', '', ...humanReadable(opts, kind)].join(CRLF) + CRLF },
    { text: ['Content-Type: message/delivery-status', '', deliveryStatus(opts)].join(CRLF) },
    {
      text: `Content-Type: ${full ? 'message/rfc822' : 'text/rfc822-headers'}${CRLF}${is7bit(returned) ? '' : `Content-Transfer-Encoding: 8bit${CRLF}`}${CRLF}`,
      bytes: returned,
    },
  ];

  // What we write is UTF-8 (an address may be); what we return is written back byte for byte.
  const chunks = [Buffer.from(`${header.join(CRLF)}${CRLF}${CRLF}This is a MIME-encapsulated delivery status notification.${CRLF}`, 'utf8')];
  for (const part of parts) {
    chunks.push(Buffer.from(`${CRLF}--${boundary}${CRLF}${part.text}`, 'utf8'));
    if (part.bytes !== undefined) chunks.push(Buffer.from(part.bytes, 'latin1'));
    if (!(part.text + (part.bytes ?? '')).endsWith(CRLF)) chunks.push(Buffer.from(CRLF));
  }
  chunks.push(Buffer.from(`${CRLF}--${boundary}--${CRLF}`));
  return Buffer.concat(chunks);
}

/** The `message/delivery-status` body: per-message fields, then one block per recipient. */
function deliveryStatus(opts: DsnOptions): string {
  const { original, now } = opts;
  const perMessage = [`Reporting-MTA: dns; ${oneLine(opts.reportingMta)}`];
  if (original.envid !== undefined) perMessage.push(`Original-Envelope-Id: ${oneLine(original.envid)}`);
  if (original.client !== undefined) {
    perMessage.push(`Received-From-MTA: dns; ${oneLine(original.client.helo ?? original.client.ip)} (${oneLine(original.client.ip)})`);
  }
  perMessage.push(`Arrival-Date: ${rfc5322Date(new Date(original.receivedAt))}`);

  const blocks = [perMessage.join(CRLF) + CRLF];
  for (const r of opts.results) {
    const lines: string[] = [];
    if (r.orcpt !== undefined) lines.push(`Original-Recipient: ${addressTyped(r.orcpt)}`);
    lines.push(`Final-Recipient: rfc822; ${oneLine(r.address)}`);
    lines.push(`Action: ${r.action}`);
    lines.push(`Status: ${statusOf(r)}`);
    if (r.remoteMta !== undefined) lines.push(`Remote-MTA: dns; ${oneLine(r.remoteMta)}`);
    if (r.code !== undefined) lines.push(`Diagnostic-Code: smtp; ${r.code} ${r.enhanced} ${oneLine(r.text)}`);
    else if (r.text) lines.push(`Diagnostic-Code: X-Portcullis; ${r.enhanced} ${oneLine(r.text)}`);
    lines.push(`Last-Attempt-Date: ${rfc5322Date(now)}`);
    if (r.action === 'delayed' && opts.willRetryUntil) lines.push(`Will-Retry-Until: ${rfc5322Date(opts.willRetryUntil)}`);
    blocks.push(lines.join(CRLF) + CRLF);
  }
  return blocks.join(CRLF);
}

/** The text a person reads first. */
function humanReadable(opts: DsnOptions, kind: string): string[] {
  const lines = [
    `This is the mail system at ${oneLine(opts.reportingMta)}.`,
    '',
    kind === 'Undeliverable'
      ? 'Your message could not be delivered to one or more recipients.'
      : kind === 'Delivery delayed'
        ? 'Your message has not been delivered yet. The mail system will keep trying; no action is needed.'
        : kind === 'Relayed'
          ? 'Your message was passed on to a mail system that does not report delivery, so no further notice will follow.'
          : 'Your message was delivered to the recipients below.',
    '',
  ];
  for (const r of opts.results) {
    lines.push(`  ${`<${oneLine(r.address)}>: ${r.action}, ${formatResult({ ...r, text: oneLine(r.text) })}`.replace(/ {2,}/g, ' ')}`);
  }
  return lines.map(asciiOnly);
}

/** The RFC 3464 Status: the enhanced code, whose class must agree with the action. */
function statusOf(r: DsnRecipient): string {
  if (/^[245]\.\d{1,3}\.\d{1,3}$/.test(r.enhanced)) return r.enhanced;
  return r.action === 'failed' ? '5.0.0' : r.action === 'delayed' ? '4.0.0' : '2.0.0';
}

/** `addr-type; address` for Original-Recipient; a bare address is taken as rfc822. */
function addressTyped(value: string): string {
  const v = oneLine(value);
  const semi = v.indexOf(';');
  return semi < 0 ? `rfc822; ${v}` : `${v.slice(0, semi)}; ${v.slice(semi + 1).trim()}`;
}

/** The original Subject:, unfolded, if it is plain ASCII (an encoded-word is ASCII too). */
function originalSubject(headerBlock: string): string {
  const m = /^subject:[ \t]*(.*(?:\r\n[ \t].*)*)/im.exec(headerBlock);
  if (!m) return '';
  const s = m[1]!.replace(/\r\n/g, '');
  return is7bit(s) ? oneLine(s) : '';
}

/** Any line ending becomes CRLF. */
function toCrlf(text: string): string {
  return text.replace(/\r?\n/g, CRLF);
}

/** Header-safe: no CR, LF or other control characters. */
function oneLine(text: string): string {
  return [...text].map((ch) => (ch < ' ' || ch === '\x7f' ? ' ' : ch)).join('').trim();
}

/** Replaces anything outside printable ASCII with '?'. */
function asciiOnly(text: string): string {
  return [...text].map((ch) => (ch >= ' ' && ch <= '~' ? ch : '?')).join('');
}

/** Whether every character is 7-bit. */
function is7bit(text: string): boolean {
  // Scanned, not spread into an array (a whole message may be passed); [^\x00-\x7f] means the same but trips no-control-regex.
  return !/[\u0080-\uffff]/.test(text);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** An RFC 5322 date in UTC, e.g. `Tue, 02 Jan 2024 03:04:05 +0000`. */
export function rfc5322Date(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}
