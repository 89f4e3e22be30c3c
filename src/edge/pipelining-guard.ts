/**
 * Unauthorised pipelining (RFC 2920; Postfix's `smtpd_forbid_unauth_pipelining`, postscreen's
 * pipelining test). A client may send commands ahead of their replies only after an EHLO whose reply
 * offered PIPELINING (the edge always offers it), and never past a command that must end a group:
 * EHLO, HELO, DATA (the message waits for 354), STARTTLS, VRFY, EXPN, TURN, QUIT, NOOP. Before any EHLO,
 * or after HELO, every command must wait for its reply.
 *
 * The guard sees the bytes as they arrive (before the parser takes them), each command line as it
 * is taken, and each reply as it is written: bytes already there behind a command that must end a
 * group, or arriving before that command's reply, are a violation.
 */
const GROUP_ENDERS = new Set(['EHLO', 'HELO', 'DATA', 'STARTTLS', 'VRFY', 'EXPN', 'TURN', 'QUIT', 'NOOP']);

export class PipeliningGuard {
  /** Bytes received between commands and not yet taken as a command line. */
  private unread = 0;
  /** The last greeting command was an EHLO answered 250: pipelining is allowed within a group. */
  private ehlo = false;
  private ehloAnswerPending = false;
  /** The reply owed is one the client must wait for. */
  private mustWait = false;
  private broken = false;

  /** The client sent a command ahead of a reply it had to wait for. */
  get violated(): boolean {
    return this.broken;
  }

  /** Bytes arrived; `inMessage`: they are the body of a message after 354, not commands. */
  received(bytes: number, inMessage: boolean): void {
    if (inMessage) return;
    if (this.mustWait) this.broken = true;
    this.unread += bytes;
  }

  /** A command line was taken (`line` without its line ending). */
  command(line: string): void {
    // The ending is counted as CRLF: a bare LF then only under-counts what is still unread.
    this.unread = Math.max(0, this.unread - line.length - 2);
    const verb = leadingWord(line).toUpperCase();
    const last = !this.ehlo || GROUP_ENDERS.has(verb);
    if (last && this.unread > 0) this.broken = true;
    if (verb === 'EHLO' || verb === 'HELO') this.ehlo = false;
    this.ehloAnswerPending = verb === 'EHLO';
    this.mustWait = last;
  }

  /** A reply was written. */
  replied(code: number): void {
    this.mustWait = false;
    if (this.ehloAnswerPending) this.ehlo = code === 250;
    this.ehloAnswerPending = false;
  }
}

/** What `/^\S+/` matches at the start of `line` ('' when it opens with white space), without a match object per command. */
function leadingWord(line: string): string {
  let end = 0;
  while (end < line.length && !isWhiteSpace(line.charCodeAt(end))) end += 1;
  return line.slice(0, end);
}

/** JavaScript's `\s`: the ASCII controls TAB to CR, space, and Unicode's space separators, line and paragraph separators and BOM. */
function isWhiteSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}
