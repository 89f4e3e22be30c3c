/**
 * The decision record log (`records:`): one JSON line per session, written off the hot path. A
 * session hands its record over and goes on; a bounded queue is written in batches by one writer.
 * When the queue is full or the disk fails, records are dropped and counted, never waited for: a
 * full or read-only disk costs records, not mail. Rotated by size and by day; rotated files older
 * than `keepDays` are deleted.
 */
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { systemClock, type Clock } from '../runtime/clock.js';

export interface RecordLogConfig {
  path: string;
  keepDays: number;
  maxBytes: number;
  hashLocalParts: boolean;
}

export interface RecordLogHooks {
  /** Counted: `written`, or a drop (`full`: the queue, `disk`: a failed write). */
  count(outcome: 'written' | 'full' | 'disk', n: number): void;
  /** A warning, at most once per `warnIntervalMs`. */
  warn(detail: string): void;
  clock?: Clock;
  /** Records allowed to wait for the disk (default 10,000). */
  maxQueued?: number;
  warnIntervalMs?: number;
}

interface Queued {
  record: object;
  addresses: readonly string[];
}

const DAY_MS = 86_400_000;
/** A character of an unquoted local part (RFC 5322 atext and dots; any non-ASCII character, RFC 6532). */
const LOCAL_PART_CHAR_UTF8 = "[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\\u0080-\\uffff-]";

/**
 * The rotated name of the current file: its path, the UTC time it was rotated, the process and a
 * counter. With `workers` every worker appends to the one file and may rotate it in the same second:
 * the process id keeps one worker's rename from replacing another's rotated file.
 */
function rotatedName(file: string, now: number, n: number): string {
  return `${file}.${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${process.pid}-${n}`;
}

export class RecordLog {
  private queue: Queued[] = [];
  private writing: Promise<void> | undefined;
  private size = 0;
  private openedDay = -1;
  private rotations = 0;
  private lastWarn = -Infinity;
  private readonly clock: Clock;
  private readonly maxQueued: number;
  private readonly warnIntervalMs: number;

  private constructor(
    private readonly config: RecordLogConfig,
    private readonly hooks: RecordLogHooks,
    private readonly salt: Buffer | undefined,
  ) {
    this.clock = hooks.clock ?? systemClock;
    this.maxQueued = hooks.maxQueued ?? 10_000;
    this.warnIntervalMs = hooks.warnIntervalMs ?? 60_000;
  }

  /**
   * Prepares the log; a directory that cannot be created or a salt that cannot be kept is a
   * warning (records are then dropped, or hashed with a salt of this process only), never fatal.
   */
  static async open(config: RecordLogConfig, hooks: RecordLogHooks): Promise<RecordLog> {
    let salt: Buffer | undefined;
    try {
      await fs.promises.mkdir(path.dirname(config.path), { recursive: true });
    } catch (err) {
      hooks.warn(`records: cannot create ${path.dirname(config.path)}: ${(err as Error).message}`);
    }
    if (config.hashLocalParts) salt = await loadSalt(`${config.path}.salt`, hooks.warn);
    const log = new RecordLog(config, hooks, salt);
    try {
      log.size = (await fs.promises.stat(config.path)).size;
      log.openedDay = Math.floor(log.clock.now() / DAY_MS);
    } catch {
      log.size = 0;
    }
    await log.prune();
    return log;
  }

  /** Hands a record over; returns at once. `addresses` are the session's envelope and header addresses. */
  write(record: object, addresses: readonly string[]): void {
    if (this.queue.length >= this.maxQueued) {
      this.hooks.count('full', 1);
      this.warnSometimes('records: the write queue is full; records are being dropped');
      return;
    }
    this.queue.push({ record, addresses });
    this.writing ??= this.drain();
  }

  /** Waits for every queued record to be written (or dropped). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    // Past the session's last reply: serialising here, not in write(), keeps it off the hot path.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const text = batch.map((q) => `${this.serialise(q)}\n`).join('');
      const bytes = Buffer.byteLength(text);
      try {
        await this.rotateIfDue(bytes);
        await fs.promises.appendFile(this.config.path, text);
        this.size += bytes;
        this.hooks.count('written', batch.length);
      } catch (err) {
        this.hooks.count('disk', batch.length);
        this.warnSometimes(`records: cannot write ${this.config.path}: ${(err as Error).message}; records are being dropped`);
      }
    }
    this.writing = undefined;
  }

  private serialise(q: Queued): string {
    const json = JSON.stringify(this.salt ? { ...q.record, hashed: true } : q.record);
    return this.salt ? pseudonymise(json, q.addresses, this.salt) : json;
  }

  /** Starts a new file when this batch would pass `maxBytes` or a new UTC day has begun. */
  private async rotateIfDue(bytes: number): Promise<void> {
    const now = this.clock.now();
    const day = Math.floor(now / DAY_MS);
    if (this.openedDay === -1) this.openedDay = day;
    if (this.size === 0 || (this.size + bytes <= this.config.maxBytes && day === this.openedDay)) return;
    this.rotations += 1;
    try {
      await fs.promises.rename(this.config.path, rotatedName(this.config.path, now, this.rotations));
    } catch (err) {
      // Removed or moved away by someone else: there is nothing to rotate, and the next write starts afresh.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.size = 0;
    this.openedDay = day;
    await this.prune();
  }

  /** Deletes rotated files last written more than `keepDays` ago. */
  private async prune(): Promise<void> {
    const dir = path.dirname(this.config.path);
    const prefix = `${path.basename(this.config.path)}.`;
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch {
      return;
    }
    const cutoff = this.clock.now() - this.config.keepDays * DAY_MS;
    for (const name of names) {
      if (!name.startsWith(prefix) || name.endsWith('.salt')) continue;
      const file = path.join(dir, name);
      try {
        if ((await fs.promises.stat(file)).mtimeMs < cutoff) await fs.promises.rm(file);
      } catch (err) {
        this.warnSometimes(`records: cannot remove ${file}: ${(err as Error).message}`);
      }
    }
  }

  private warnSometimes(detail: string): void {
    const now = this.clock.now();
    if (now - this.lastWarn < this.warnIntervalMs) return;
    this.lastWarn = now;
    this.hooks.warn(detail);
  }
}

/** The install's salt, made on first use and kept beside the log (mode 0600) so hashes stay stable across restarts. */
async function loadSalt(file: string, warn: (detail: string) => void): Promise<Buffer> {
  try {
    return Buffer.from((await fs.promises.readFile(file, 'utf8')).trim(), 'hex');
  } catch {
    const salt = randomBytes(32);
    try {
      await fs.promises.writeFile(file, salt.toString('hex'), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      warn(`records: cannot keep the hashing salt in ${file}: ${(err as Error).message}; hashes will differ after a restart`);
    }
    return salt;
  }
}

/** The keyed hash that stands for a local part: `h.` and 16 hex digits. */
export function hashLocalPart(local: string, salt: Buffer): string {
  return `h.${createHmac('sha256', salt).update(local.toLowerCase()).digest('hex').slice(0, 16)}`;
}

/**
 * Where a local part may stand in the serialised record: a run of local-part characters (any non-ASCII
 * character among them, for SMTPUTF8) or a quoted string as JSON escapes it (its own `\"` and `\\`
 * escaped once more), before an `@` and not inside a longer run.
 */
// Inside the quotes: a plain character, a JSON escape, or a quoted pair (a backslash, JSON `\\`, and the
// one character it escapes): read left to right, the closing quote is the first one no pair takes.
const QUOTED_LOCAL_PART = String.raw`\\"(?:[^"\\]|\\[^"\\]|\\\\(?:\\["\\]|[^"\\]))*\\"`;
const LOCAL_PART_TOKEN = new RegExp(`(?<!${LOCAL_PART_CHAR_UTF8})(${LOCAL_PART_CHAR_UTF8}+|${QUOTED_LOCAL_PART})@`, 'g');

/**
 * Every occurrence of each address in the serialised record, its local part replaced by its hash.
 * One pass over the record whatever the number of addresses: a session with thousands of recipients
 * costs the length of its record, not that times the recipients.
 */
export function pseudonymise(json: string, addresses: readonly string[], salt: Buffer): string {
  const hashes = new Map<string, string>();
  for (const address of addresses) {
    const at = address.lastIndexOf('@');
    if (at <= 0) continue;
    const local = address.slice(0, at);
    const key = JSON.stringify(local).slice(1, -1).toLowerCase();
    if (!hashes.has(key)) hashes.set(key, hashLocalPart(local, salt));
  }
  if (hashes.size === 0) return json;
  return json.replace(LOCAL_PART_TOKEN, (whole, local: string) => {
    const hash = hashes.get(local.toLowerCase());
    return hash === undefined ? whole : `${hash}@`;
  });
}
