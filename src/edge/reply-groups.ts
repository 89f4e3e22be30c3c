/**
 * Replies to a pipelined group go out in one write (RFC 2920 3.2: a server "should elect to store
 * responses to grouped RSET, MAIL FROM ... and RCPT TO commands in an internal buffer so they can be
 * sent as a unit"). Each write is a system call that also wakes the client; an MTA that pipelines
 * MAIL, its RCPTs and DATA gets their replies in one packet instead of one per command.
 *
 * A reply is held (the socket corked) only when it answers MAIL, RCPT or RSET and another complete
 * command line has already arrived behind it: that command's reply follows, so nothing waits on the
 * client. Any other reply (DATA's 354, EHLO, STARTTLS, QUIT, a reply that closes) is written at once and
 * takes the held ones with it. Lines are counted as they arrive and before the parser takes them, so
 * the count errs only low (a line that arrives during a message is not counted): a reply is never
 * held for a line that is not there.
 */
import type net from 'node:net';

const GROUPED = new Set(['MAIL', 'RCPT', 'RSET']);
const LF = 0x0a;

export class ReplyGroups {
  /** Complete command lines received and not yet taken by the parser. */
  private linesAhead = 0;
  /** The command being answered is one whose reply may wait for the rest of its group. */
  private grouped = false;
  private corked = false;

  constructor(private readonly socket: net.Socket) {}

  /** Bytes arrived; `inMessage`: they are message content after a 354, not command lines. */
  received(chunk: Buffer, inMessage: boolean): void {
    if (inMessage) return;
    for (let at = chunk.indexOf(LF); at >= 0; at = chunk.indexOf(LF, at + 1)) this.linesAhead += 1;
  }

  /** The parser took a command line (`line` without its ending). */
  command(line: string): void {
    this.linesAhead = Math.max(0, this.linesAhead - 1);
    const space = line.indexOf(' ');
    this.grouped = GROUPED.has((space < 0 ? line : line.slice(0, space)).toUpperCase());
  }

  /** A reply is about to be written: true when it is held with the rest of its group (the socket corked). */
  holding(close: boolean): boolean {
    const hold = this.grouped && this.linesAhead > 0 && !close;
    this.grouped = false;
    if (hold && !this.corked) {
      this.socket.cork();
      this.corked = true;
    }
    return hold;
  }

  /** The reply is written: unless it was held, it goes out now with whatever was held before it. */
  written(held: boolean): void {
    // Lines still counted after a reply that ends a group were sent before the client could know it: a
    // client that may pipeline never sends past such a command, so they are not waited for.
    if (!held) this.linesAhead = 0;
    // A long group is sent in parts rather than filling the socket's buffer: smtp-server waits for
    // 'drain' before the next command, which a corked socket would never emit.
    if (!held || this.socket.writableNeedDrain) this.flush();
  }

  /** Sends whatever is held (the connection is closing, or TLS starts). */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }
}
