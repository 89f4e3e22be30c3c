/**
 * The optional SMTP protocol log: one line per command and per reply, with the time, the session
 * id, the client address and the direction. Writes are buffered and asynchronous; when the disk
 * cannot keep up, lines are dropped and counted rather than making a session wait.
 */
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { systemClock, type Clock } from '../runtime/clock.js';

/** `in`: what the client sent; `out`: what the edge replied. */
export type Direction = 'in' | 'out';

const MARK: Record<Direction | 'event', string> = { in: '<<<', out: '>>>', event: '***' };

export interface ProtocolLogOptions {
  clock?: Clock;
  /** Bytes allowed to wait for the disk before lines are dropped (default 4 MiB). */
  maxBufferedBytes?: number;
  /** Told about a write failure once; the log stops writing after one. Defaults to standard error. */
  onError?: (err: Error) => void;
}

/** An append-only SMTP transcript file shared by every session of the process. */
export class ProtocolLog {
  private readonly clients = new Map<string, string>();
  private droppedLines = 0;
  private failed = false;
  private pendingDropReport = false;

  private constructor(
    private readonly stream: fs.WriteStream,
    private readonly clock: Clock,
    private readonly maxBufferedBytes: number,
    private readonly onError: (err: Error) => void,
  ) {
    stream.on('error', (err) => {
      this.failed = true;
      this.onError(err);
    });
  }

  /** Opens (creating its directory, appending to an existing file) the log at `file`; fails fast if it cannot. */
  static async open(file: string, options: ProtocolLogOptions = {}): Promise<ProtocolLog> {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const stream = fs.createWriteStream(file, { flags: 'a' });
    await Promise.race([
      once(stream, 'open'),
      once(stream, 'error').then(([err]: unknown[]) => {
        throw err;
      }),
    ]);
    const onError = options.onError ?? ((err: Error) => process.stderr.write(`portcullis: protocol log ${file}: ${err.message}\n`));
    return new ProtocolLog(stream, options.clock ?? systemClock, options.maxBufferedBytes ?? 4 * 1024 * 1024, onError);
  }

  /** Lines dropped so far because the disk was behind or the file failed. */
  get dropped(): number {
    return this.droppedLines;
  }

  /** A session began: remembers its client address for the lines that follow. */
  connect(sessionId: string, client: string, listener: string): void {
    this.clients.set(sessionId, client);
    this.write(sessionId, 'event', `connection from ${client} on listener ${listener}`);
  }

  /** One command from the client (`in`) or one reply to it (`out`); a multi-line reply gives one line each. */
  line(sessionId: string, direction: Direction, text: string): void {
    for (const part of text.replace(/\r?\n$/, '').split(/\r?\n/)) this.write(sessionId, direction, part);
  }

  /** A session ended; `reason` says how (quit, dropped, timed out, client went away). */
  disconnect(sessionId: string, reason: string): void {
    this.write(sessionId, 'event', `closed: ${reason}`);
    this.clients.delete(sessionId);
  }

  /** Flushes what is buffered and closes the file. */
  async close(): Promise<void> {
    if (this.stream.destroyed || this.stream.writableFinished) return;
    this.reportDropped();
    this.stream.end();
    await once(this.stream, 'finish');
  }

  private write(sessionId: string, direction: Direction | 'event', text: string): void {
    if (this.failed || this.stream.writableEnded) {
      this.droppedLines++;
      return;
    }
    if (this.stream.writableLength > this.maxBufferedBytes) {
      this.droppedLines++;
      this.pendingDropReport = true;
      return;
    }
    this.reportDropped();
    const client = this.clients.get(sessionId) ?? '-';
    const time = new Date(this.clock.now()).toISOString();
    this.stream.write(`${time} ${sessionId} ${client} ${MARK[direction]} ${escapeControls(text)}\n`);
  }

  /** Marks the gap in the file once the backlog has cleared, just before the next line. */
  private reportDropped(): void {
    if (!this.pendingDropReport) return;
    this.pendingDropReport = false;
    const time = new Date(this.clock.now()).toISOString();
    this.stream.write(`${time} - - *** ${this.droppedLines} line(s) dropped so far: the disk fell behind\n`);
  }
}

/** Keeps one record per line: a client cannot forge log lines with embedded CR/LF or escapes. */
function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
