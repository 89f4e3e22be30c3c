import fs, { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { writeAll } from '../storage/durable-write.js';

const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);

/** The events of the message tracking log. */
export type TrackingEventName = 'received' | 'submitted' | 'expanded' | 'delivered' | 'transferred' | 'deferred' | 'dsn' | 'failed' | 'badmail';

/** One line of the tracking log. */
export interface TrackingEvent {
  /** ISO 8601 time. */
  time: string;
  event: TrackingEventName;
  /** The queue id the message got when received (parts split off later keep it). */
  id: string;
  /** The queue id of the part the event is about, when it differs from `id`. */
  part?: string;
  /** The Message-ID header, when there is one. */
  messageId?: string;
  /** The envelope sender ('' for <>). */
  sender: string;
  recipients: string[];
  size: number;
  clientIp?: string;
  /** Why: the reply or status behind the event, e.g. `250 2.6.0 ...` or `550 5.1.1 ...`. */
  reason?: string;
}

/** What `portcullis track` searches for; every given field must match. */
export interface TrackingQuery {
  /** A queue id (also matches the parts split off it) or a Message-ID, with or without <>. */
  id?: string;
  sender?: string;
  recipient?: string;
}

/**
 * Appends events to the tracking log, one JSON object per line, in the order they were logged. The file
 * stays open for appending between writes (an open and a close per write were two of the engine's
 * thread-pool round trips per line); a write that fails closes it, and the next write opens it again
 * (making its folder if need be). Not synced: a crash may lose the last lines written, as before.
 */
export class TrackingLog {
  private tail: Promise<void> = Promise.resolve();
  /** Lines waiting for the next write. */
  private pending: string[] = [];
  /** The open append descriptor, or undefined until the next write opens it. */
  private fd: number | undefined;

  constructor(readonly file: string) {}

  /** Queues one event for writing; `flush` waits for it. A failed write is reported through `onError`. */
  log(event: Omit<TrackingEvent, 'time'> & { time?: string }, now: number, onError: (err: Error) => void): void {
    const line = `${JSON.stringify({ ...event, time: event.time ?? new Date(now).toISOString() })}\n`;
    // Lines logged while a write is under way (or before it starts) go out together in the next one:
    // one write per batch, in the order logged.
    this.pending.push(line);
    if (this.pending.length > 1) return;
    this.tail = this.tail.then(() => this.writePending()).catch((err: unknown) => onError(err as Error));
  }

  /** Resolves once every event logged so far is written. */
  flush(): Promise<void> {
    return this.tail;
  }

  /** Writes what is logged so far and closes the file (a later event opens it again). */
  async close(): Promise<void> {
    await this.tail;
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) await closeFd(fd);
  }

  private async writePending(): Promise<void> {
    const lines = Buffer.from(this.pending.splice(0).join(''), 'utf8');
    try {
      if (this.fd === undefined) {
        await mkdir(path.dirname(this.file), { recursive: true });
        this.fd = await openFd(this.file, 'a', 0o666);
      }
      await writeAll(this.fd, lines);
    } catch (err) {
      const fd = this.fd;
      this.fd = undefined;
      if (fd !== undefined) await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }
}

/** Whether a logged event matches a query (addresses compare without case; ids by prefix for parts). */
export function matchesTracking(e: TrackingEvent, q: TrackingQuery): boolean {
  if (q.id !== undefined) {
    const id = q.id.replace(/^<|>$/g, '');
    const mid = e.messageId?.replace(/^<|>$/g, '');
    if (e.id !== id && e.part !== id && mid !== id) return false;
  }
  if (q.sender !== undefined && e.sender.toLowerCase() !== q.sender.toLowerCase()) return false;
  if (q.recipient !== undefined) {
    const r = q.recipient.toLowerCase();
    if (!e.recipients.some((x) => x.toLowerCase() === r)) return false;
  }
  return true;
}

/** Reads the tracking log and returns the events matching the query, oldest first. */
export async function searchTrackingLog(file: string, query: TrackingQuery): Promise<TrackingEvent[]> {
  const out: TrackingEvent[] = [];
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const e = JSON.parse(line) as TrackingEvent;
    if (matchesTracking(e, query)) out.push(e);
  }
  return out;
}
