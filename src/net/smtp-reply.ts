/**
 * SMTP replies: a code, an RFC 3463 enhanced code, and one or more lines of text; and the one error
 * type that carries the reply a failure becomes, for the edge, the engine and Badmail alike.
 */

export interface SmtpReply {
  code: number;
  /** Enhanced status code, e.g. `4.7.0`; written on every line. */
  enhanced: string;
  /** Text of each line, without the code and the enhanced code. */
  lines: string[];
}

const ENHANCED_PREFIX = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/;

/** Build a one-line reply. */
export function reply(code: number, enhanced: string, text: string): SmtpReply {
  return { code, enhanced, lines: [text] };
}

/** The text of each line with its enhanced code in front (none for the greeting and EHLO, RFC 2034). */
export function replyTexts(r: SmtpReply): string[] {
  const lines = r.lines.length > 0 ? r.lines : [''];
  return lines.map((text) => (r.enhanced ? `${r.enhanced} ${text}`.trimEnd() : text));
}

/** The wire form of a reply, CRLF-terminated. */
export function formatReply(r: SmtpReply): string {
  const texts = replyTexts(r);
  return texts.map((text, i) => `${r.code}${i < texts.length - 1 ? '-' : ' '}${text}\r\n`).join('');
}

/** `4.0.0`-style default for a reply that came without an enhanced code. */
export function classDefault(code: number): string {
  return `${Math.floor(code / 100)}.0.0`;
}

/**
 * A reply received from another server, lines without their `code[- ]` prefix. The enhanced code is
 * taken from the first line when the server sent one (so relayed replies stay unchanged), else the
 * class default is added, because every reply the edge writes carries one.
 */
export function fromServerLines(code: number, texts: string[]): SmtpReply {
  const m = ENHANCED_PREFIX.exec(texts[0] ?? '');
  if (!m) return { code, enhanced: classDefault(code), lines: texts };
  const enhanced = `${m[1]}.${m[2]}.${m[3]}`;
  return { code, enhanced, lines: texts.map((t) => t.replace(ENHANCED_PREFIX, '')) };
}

/** Splits `"5.7.1 text"` into its enhanced code and text, when the text starts with one. */
export function splitEnhanced(text: string): { enhanced: string; text: string } | undefined {
  const m = ENHANCED_PREFIX.exec(text);
  return m ? { enhanced: `${m[1]}.${m[2]}.${m[3]}`, text: text.slice(m[0].length) } : undefined;
}

/**
 * An error that carries the SMTP reply it becomes on the client's side; `detail` (the message) is
 * what the logs get when it differs from the reply. Subclass it only where callers must tell kinds
 * apart, and carry the reply the same way.
 */
export class SmtpError extends Error {
  constructor(
    readonly reply: SmtpReply,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    super(detail ?? `${reply.code} ${reply.enhanced} ${reply.lines.join(' / ')}`, options);
    this.name = 'SmtpError';
  }

  /** smtp-server reads `responseCode` from handler errors. */
  get responseCode(): number {
    return this.reply.code;
  }
}
