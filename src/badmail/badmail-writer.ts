/**
 * The Badmail directory: messages Portcullis accepted and will never deliver. The edge puts there
 * what the `archive` action kept; the bundled engine puts there bounces that could not be returned.
 * Each entry is a directory `<time>-<id>/` holding `message.eml` (the bytes as received or queued)
 * and `envelope.json` (a BadmailRecord). Both are written (and fsynced, unless the engine runs with
 * `transport.fsync: false`) under a temporary directory, which is synced too, then renamed into place
 * and the parent synced: a crash leaves both files or neither.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Rules } from '../config/schema.js';
import { reply, SmtpError } from '../net/smtp-reply.js';
import { fsyncDir } from '../transport/fs-sync.js';

/** What `envelope.json` holds: who sent the message, to whom, and why it is in Badmail. */
export interface BadmailRecord {
  /** The edge's session id or the engine's message id; with `time` it names the entry. */
  id: string;
  /** ISO 8601. */
  time: string;
  /** `archive`: a sender filter at the edge kept it. `undeliverable-bounce`: the engine could not return it. */
  source: 'archive' | 'undeliverable-bounce';
  sender: string;
  recipients: string[];
  /** In words: the check and rule that archived it, or the delivery failures of the bounce. */
  reason: string;
  /** What else its writer knows: listener, client and step at the edge; the queued envelope in the engine. */
  [detail: string]: unknown;
}

/** A Badmail write that failed: the client is told to retry (the engine retries on its own). */
export class BadmailWriteError extends SmtpError {
  constructor(detail: string) {
    super(reply(452, '4.3.1', 'Insufficient system storage'), `badmail write failed: ${detail}`);
    this.name = 'BadmailWriteError';
  }
}

/** The one Badmail directory of a rule set: `badmail`, else `<transport.dataDir>/badmail`. */
export function badmailDir(rules: Rules, baseDir: string = process.cwd()): string {
  return path.resolve(baseDir, rules.badmail ?? path.join(rules.transport.dataDir, 'badmail'));
}

/** Writes entries into one Badmail directory. */
export class BadmailWriter {
  constructor(
    readonly dir: string,
    private readonly fsync = true,
  ) {}

  /**
   * Stores one message and its record atomically; resolves with the entry's directory. Errors of the
   * `message` source itself (the client went away, a size limit, an unreadable queue file) are
   * rethrown as they are, after the partial entry is removed; a failing disk becomes BadmailWriteError.
   */
  async write(message: AsyncIterable<Buffer>, record: BadmailRecord): Promise<string> {
    const name = `${record.time.replace(/[:.]/g, '')}-${record.id}`;
    const tmp = path.join(this.dir, `.tmp-${name}`);
    const final = path.join(this.dir, name);
    let sourceError: unknown;
    const guarded = async function* (): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of message) yield chunk;
      } catch (err) {
        sourceError = err;
        throw err;
      }
    };
    try {
      await fs.promises.mkdir(tmp, { recursive: true });
      await this.writeFile(path.join(tmp, 'message.eml'), guarded());
      await this.writeFile(path.join(tmp, 'envelope.json'), [Buffer.from(JSON.stringify(record, null, 2) + '\n')]);
      // The entries of the temporary directory must be durable before the rename publishes it.
      if (this.fsync) await fsyncDir(tmp);
      await fs.promises.rename(tmp, final);
      if (this.fsync) await fsyncDir(this.dir);
      return final;
    } catch (err) {
      await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      if (sourceError !== undefined) throw sourceError;
      throw new BadmailWriteError(err instanceof Error ? err.message : String(err));
    }
  }

  private async writeFile(file: string, data: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
    const handle = await fs.promises.open(file, 'wx', 0o600);
    try {
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          handle.write(chunk).then(() => done(), done);
        },
      });
      await pipeline(data, sink);
      if (this.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
