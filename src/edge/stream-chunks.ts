/**
 * The chunks of a client's message stream, read as Node's own async iterator reads them (`read()`,
 * waiting for `readable` when none is buffered) but without what that iterator builds for every
 * message: an async generator and the end-of-stream helper's listeners and closures, a few
 * microseconds a message. Same outcomes: the chunks in order, then done at `end`; the stream's error
 * if it fails; a premature-close error if it is destroyed before its end (the client went away). As
 * with Node's iterator, the stream is destroyed once its outcome has been read.
 */
import type { Readable } from 'node:stream';

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

export class StreamChunks implements AsyncIterator<Buffer, undefined> {
  /** undefined while the stream may still give chunks; null once it ended; the error that ended it otherwise. */
  private outcome: Error | null | undefined;
  /** Resumes the pending next(), while it waits for the stream. */
  private waiting: (() => void) | undefined;
  private readonly wake = (): void => {
    const resume = this.waiting;
    this.waiting = undefined;
    resume?.();
  };
  private readonly ended = (): void => this.settle(null);
  private readonly failed = (err: Error): void => this.settle(err);
  private readonly closed = (): void => this.settle(prematureClose());

  constructor(private readonly stream: Readable) {
    stream.on('readable', this.wake);
    stream.on('end', this.ended);
    // Left on once the outcome is known, so that no later error of the stream goes unheard.
    stream.on('error', this.failed);
    stream.on('close', this.closed);
  }

  next(): Promise<IteratorResult<Buffer, undefined>> {
    const chunk = this.stream.destroyed ? null : (this.stream.read() as Buffer | null);
    if (chunk !== null) return Promise.resolve({ done: false, value: chunk });
    const outcome = this.outcome;
    if (outcome === undefined) {
      // The read is retried a microtask after the event, as Node's iterator retries it: read inside the
      // `readable` event itself, a 50 MB message behind a slow back end grew the edge by 34 MiB, not 1.
      return new Promise<void>((resolve) => (this.waiting = resolve)).then(() => this.next());
    }
    this.stream.destroy();
    return outcome === null ? Promise.resolve(DONE) : Promise.reject(outcome);
  }

  /** The first of end, error and close decides. */
  private settle(outcome: Error | null): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    const s = this.stream;
    s.off('readable', this.wake);
    s.off('end', this.ended);
    s.off('close', this.closed);
    this.wake();
  }
}

/** What Node's iterator rejects with for a stream destroyed before its end. */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
