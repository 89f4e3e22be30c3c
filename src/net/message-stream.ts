/**
 * The stream of one message's decoded bytes that onData reads, when the adapted parser decodes DATA
 * (smtp-server-adapter.ts): a plain Readable the parser pushes into, where smtp-server makes a
 * PassThrough per message, whose Writable half and transform step cost a few microseconds a message
 * for bytes that are only handed on.
 *
 * smtp-server still ends the stream and asks after it as after its PassThrough: `writable` and `end`
 * in its `_endDataMode`, `writableEnded` when the connection closes (a message received in full is
 * left to its reader, any other is destroyed), and `byteLength` and `sizeExceeded` as it counts.
 * Back-pressure is the reader's: a chunk is taken off the socket only once the stream is below its
 * high-water mark again (the reader asked for more) or was destroyed.
 */
import { Readable } from 'node:stream';

export class MessageStream extends Readable {
  /** The message bytes so far, as smtp-server keeps them on its message stream. */
  byteLength = 0;
  /** Whether they passed smtp-server's `size` option. */
  sizeExceeded = false;
  /** The whole message was handed over (`end`). */
  writableEnded = false;
  /** Runs when the reader wants more, while the parser holds back the next chunk. */
  private wanted: (() => void) | undefined;

  /** Whether the parser may still hand over bytes. */
  get writable(): boolean {
    return !this.writableEnded && !this.destroyed;
  }

  /** Hands `data` to the reader; `next` runs at once while below the high-water mark, else once the reader wants more or the stream is destroyed. */
  feed(data: Buffer, next: () => void): void {
    if (this.destroyed || this.push(data)) return next();
    this.wanted = next;
  }

  /** The message's last bytes, if any, then its end. */
  end(last?: Buffer): void {
    if (!this.writable) return;
    this.writableEnded = true;
    if (last !== undefined && last.length > 0) this.push(last);
    this.push(null);
  }

  override _read(): void {
    const wanted = this.wanted;
    this.wanted = undefined;
    wanted?.();
  }

  /** A destroyed stream is read no more: the parser goes on (draining what is left, as smtp-server does), a turn later as after a PassThrough's `close`. */
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const wanted = this.wanted;
    this.wanted = undefined;
    callback(err);
    if (wanted) process.nextTick(wanted);
  }
}
