/**
 * One buffer every plain back-end connection reads into (net's `onread`), instead of a buffer made per
 * read and pushed through the socket's Readable to a 'data' listener: a pooled connection reads four
 * or five replies a message, and each read through the stream cost an allocation, the Readable's
 * bookkeeping and an event. Sharing the buffer is safe because each read is parsed (its bytes copied
 * into a string by the reply reader) before the event loop can make another read.
 */
import type { ReplyReader } from './backend-reply-reader.js';

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** A connection's reads from the shared buffer to its session's reader; bytes read before the session exists wait, copied, for it. */
export class SharedBufferReads {
  private reader: ReplyReader | undefined;
  private early: Buffer[] = [];
  /** What `net.connect` takes as its `onread` option. */
  readonly onread = {
    buffer: READ_BUFFER,
    callback: (bytes: number): boolean => {
      if (this.reader) this.reader.push(READ_BUFFER, bytes);
      else this.early.push(Buffer.from(READ_BUFFER.subarray(0, bytes)));
      return true;
    },
  };

  deliverTo(reader: ReplyReader): void {
    this.reader = reader;
    for (const chunk of this.early.splice(0)) reader.push(chunk);
  }
}
