import { createReadStream } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

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

/** Appends events to the tracking log, one JSON object per line, in the order they were logged. */
export class TrackingLog {
  private tail: Promise<void> = Promise.resolve();
  /** Lines waiting for the next write. */
  private pending: string[] = [];
  private dirReady: Promise<unknown> | undefined;

  constructor(readonly file: string) {}

  /** Queues one event for writing; `flush` waits for it. A failed write is reported through `onError`. */
  log(event: Omit<TrackingEvent, 'time'> & { time?: string }, now: number, onError: (err: Error) => void): void {
    const line = `${JSON.stringify({ ...event, time: event.time ?? new Date(now).toISOString() })}\n`;
    // A failed mkdir is tried again by the next event, not remembered for good.
    this.dirReady ??= mkdir(path.dirname(this.file), { recursive: true }).catch((err: unknown) => {
      this.dirReady = undefined;
      throw err;
    });
    const ready = this.dirReady;
    // Lines logged while a write is under way go out together in the next one: one append per
    // batch, not an open, write and close per event.
    this.pending.push(line);
    if (this.pending.length > 1) return;
    this.tail = this.tail.then(async () => {
      const lines = this.pending.splice(0).join('');
      await ready;
      await appendFile(this.file, lines, 'utf8');
    }).catch((err: unknown) => onError(err as Error));
  }

  /** Resolves once every event logged so far is written. */
  flush(): Promise<void> {
    return this.tail;
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
