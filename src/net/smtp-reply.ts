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

/**
 * Length of the enhanced code opening `text` (RFC 3463 `class.subject.detail`: class 2, 4 or 5, then
 * one to three digits twice) when a space or the end follows it, else 0: what
 * `/^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/` matches without its space, read without building a match
 * for every reply.
 */
export function enhancedCodeLength(text: string): number {
  const c = text.charCodeAt(0);
  if ((c !== 0x32 && c !== 0x34 && c !== 0x35) || text.charCodeAt(1) !== 0x2e) return 0;
  const dot = digitsEnd(text, 2);
  if (dot === 2 || text.charCodeAt(dot) !== 0x2e) return 0;
  const end = digitsEnd(text, dot + 1);
  if (end === dot + 1 || (end < text.length && text.charCodeAt(end) !== 0x20)) return 0;
  return end;
}

/** Where a run of at most three ASCII digits from `at` ends. */
function digitsEnd(text: string, at: number): number {
  let i = at;
  while (i < at + 3 && isDigit(text.charCodeAt(i))) i += 1;
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** `text` without the enhanced code (and its space) that `enhancedCodeLength` found. */
function afterEnhanced(text: string, length: number): string {
  return length === 0 ? text : text.slice(length + 1);
}

const CLASS_DEFAULTS = ['0.0.0', '1.0.0', '2.0.0', '3.0.0', '4.0.0', '5.0.0', '6.0.0', '7.0.0', '8.0.0', '9.0.0'];

/** Build a one-line reply. */
export function reply(code: number, enhanced: string, text: string): SmtpReply {
  return { code, enhanced, lines: [text] };
}

/** The text of each line with its enhanced code in front (none for the greeting and EHLO, RFC 2034). */
export function replyTexts(r: SmtpReply): string[] {
  const lines = r.lines.length > 0 ? r.lines : [''];
  return lines.map((text) => withEnhanced(r.enhanced, text));
}

/** One line's text as written: the enhanced code (when there is one) before it. */
export function withEnhanced(enhanced: string, text: string): string {
  return enhanced ? `${enhanced} ${text}`.trimEnd() : text;
}

/** The wire form of a reply, CRLF-terminated. */
export function formatReply(r: SmtpReply): string {
  const texts = replyTexts(r);
  return texts.map((text, i) => `${r.code}${i < texts.length - 1 ? '-' : ' '}${text}\r\n`).join('');
}

/** `4.0.0`-style default for a reply that came without an enhanced code. */
export function classDefault(code: number): string {
  return CLASS_DEFAULTS[Math.floor(code / 100)] ?? `${Math.floor(code / 100)}.0.0`;
}

/**
 * A reply received from another server, lines without their `code[- ]` prefix. The enhanced code is
 * taken from the first line when the server sent one (so relayed replies stay unchanged), else the
 * class default is added, because every reply the edge writes carries one.
 */
export function fromServerLines(code: number, texts: string[]): SmtpReply {
  const first = texts[0] ?? '';
  const length = enhancedCodeLength(first);
  if (length === 0) return { code, enhanced: classDefault(code), lines: texts };
  const lines = texts.length === 1 ? [afterEnhanced(first, length)] : texts.map((t) => afterEnhanced(t, enhancedCodeLength(t)));
  return { code, enhanced: first.slice(0, length), lines };
}

/** `fromServerLines(code, [text])`, for the one-line replies nearly every command gets, without the array in between. */
export function fromServerLine(code: number, text: string): SmtpReply {
  const length = enhancedCodeLength(text);
  if (length === 0) return { code, enhanced: classDefault(code), lines: [text] };
  return { code, enhanced: text.slice(0, length), lines: [afterEnhanced(text, length)] };
}

/** Splits `"5.7.1 text"` into its enhanced code and text, when the text starts with one. */
export function splitEnhanced(text: string): { enhanced: string; text: string } | undefined {
  const length = enhancedCodeLength(text);
  return length === 0 ? undefined : { enhanced: text.slice(0, length), text: afterEnhanced(text, length) };
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
