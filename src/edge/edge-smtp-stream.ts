/**
 * smtp-server's input parser with the edge's own DATA decoding (data-decoder.ts): smtp-server keeps
 * reading command lines, and DATA is un-stuffed with one output buffer per input chunk, waiting for
 * the message stream to drain before taking the next chunk off the socket, whatever the bytes are.
 */
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type { SMTPServerDataStream } from 'smtp-server';
import { DataDecoder } from './data-decoder.js';

export class EdgeSmtpStream extends SMTPStream {
  private decoder = new DataDecoder();

  override startDataMode(maxBytes?: number | string | null): SMTPServerDataStream {
    this.decoder = new DataDecoder();
    return super.startDataMode(maxBytes);
  }

  override _feedDataStream(chunk: Buffer, done: (err?: Error | null) => void): void {
    const { data, rest } = this.decoder.push(chunk);
    this._countDataBytes(data.length);
    if (rest !== undefined) return this._endDataMode(data.length ? data : false, rest, done);
    const stream = this._dataStream;
    if (!data.length || !stream?.writable || stream.write(data) || stream.destroyed) return done();
    // A stream the application destroys never drains, it only closes.
    const go = (): void => {
      stream.off('drain', go);
      stream.off('close', go);
      done();
    };
    stream.once('drain', go);
    stream.once('close', go);
  }
}
