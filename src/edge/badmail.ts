/**
 * The Badmail directory: messages the `archive` action accepted and will never deliver. Each one is a
 * directory `<time>-<id>/` holding `message.eml` (the bytes exactly as the client sent them) and
 * `envelope.json`. Both are written and fsynced under a temporary name, then the directory is renamed
 * into place and the parent fsynced: a crash leaves both files or neither.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { reply, SmtpError } from './smtp-reply.js';

/** Who sent the archived message, to whom, and which filter sent it to Badmail. */
export interface BadmailEnvelope {
  session: string;
  listener: string;
  clientIp: string;
  helo: string;
  sender: string;
  recipients: string[];
  step: number;
  check: string;
  rule?: string;
  /** ISO 8601. */
  time: string;
}

/** A Badmail write that failed: the client is told to retry. */
export class BadmailWriteError extends SmtpError {
  constructor(detail: string) {
    super(reply(452, '4.3.1', 'Insufficient system storage'), `badmail write failed: ${detail}`);
    this.name = 'BadmailWriteError';
  }
}

/** Writes archived messages into one Badmail directory. */
export class BadmailWriter {
  constructor(readonly dir: string) {}

  /**
   * Stores one message and its envelope atomically; resolves with the entry's directory. Errors of
   * the `message` source itself (the client went away, a size limit) are rethrown as they are, after
   * the partial entry is removed; a failing disk becomes BadmailWriteError (452 4.3.1).
   */
  async write(message: AsyncIterable<Buffer>, envelope: BadmailEnvelope): Promise<string> {
    const name = `${envelope.time.replace(/[:.]/g, '')}-${envelope.session}`;
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
      await writeSynced(path.join(tmp, 'message.eml'), guarded());
      await writeSynced(path.join(tmp, 'envelope.json'), [Buffer.from(JSON.stringify(envelope, null, 2) + '\n')]);
      await fs.promises.rename(tmp, final);
      await fsyncDir(this.dir);
      return final;
    } catch (err) {
      await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      if (sourceError !== undefined) throw sourceError;
      throw new BadmailWriteError(err instanceof Error ? err.message : String(err));
    }
  }
}

async function writeSynced(file: string, data: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
  const handle = await fs.promises.open(file, 'wx');
  try {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        handle.write(chunk).then(() => done(), done);
      },
    });
    await pipeline(data, sink);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
