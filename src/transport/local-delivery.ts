import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { reply, SmtpError } from '../net/smtp-reply.js';
import { fsyncDir, publish, writeNewFile } from '../storage/durable-write.js';
import { ensureMaildir, forgetMaildir, holdsDelivery, mailboxDir, maildirSize, uniqueName } from './maildir.js';

/** A local delivery that did not happen, with the reply it becomes (4.2.2 quota, 4.3.1 disk full, 4.3.0 other). */
export class LocalDeliveryError extends SmtpError {
  constructor(code: number, enhanced: string, text: string, options?: { cause?: unknown }) {
    super(reply(code, enhanced, text), text, options);
    this.name = 'LocalDeliveryError';
  }
}

/** Options of one local delivery. */
export interface LocalDeliveryOptions {
  /** The mailbox's storage limit: over it the delivery fails with 452 4.2.2 (retried). */
  quotaBytes?: number;
  /** fsync the file and the directory (default true). */
  fsync?: boolean;
  /** The queued part this copy belongs to: its id goes into the file's name. */
  queueId?: string;
  /** The part was in the queue when the engine stopped: a file already delivered for it counts as this delivery. */
  mayBeDelivered?: boolean;
  /** Leave the sync of `new/` to the caller, which must not count the copy durable before it has synced the directory returned. */
  deferNewSync?: boolean;
}

/** The trace headers a local delivery prepends: `Return-Path:` (the envelope sender) and `Delivered-To:`. */
export function localDeliveryHeaders(mailFrom: string, mailbox: string): string {
  return `Return-Path: <${mailFrom}>\nDelivered-To: ${mailbox}\n`;
}

/**
 * Delivers a message into `<mailboxRoot>/<mailbox>/` the Maildir way: written under a unique name in
 * `tmp/`, fsynced, renamed into `new/` (with its Maildir++ `,S=` size), and `new/` fsynced (or, with
 * `deferNewSync`, `new/` returned for the caller to sync). Line endings become LF, as Maildir files
 * conventionally have. Throws LocalDeliveryError.
 */
export async function deliverLocal(
  mailboxRoot: string,
  mailbox: string,
  /** The content's file, or its bytes when they are still in memory. */
  content: string | Buffer,
  prepend: string,
  options: LocalDeliveryOptions = {},
): Promise<string | undefined> {
  const fsync = options.fsync ?? true;
  const dir = mailboxDir(mailboxRoot, mailbox);
  const newDir = path.join(dir, 'new');
  // The directory whose sync makes the copy durable, when the caller takes it on.
  const owed = fsync && options.deferNewSync ? newDir : undefined;
  const name = uniqueName(Date.now(), options.queueId);
  const tmpPath = path.join(dir, 'tmp', name);
  try {
    await ensureMaildir(dir, fsync);
    // A crash between the Maildir file and the removal of its record repeats the delivery: found here, it is not made twice.
    if (options.mayBeDelivered && options.queueId !== undefined && (await holdsDelivery(dir, options.queueId))) {
      // Found after a crash that may have come before the sync of `new/`: synced before the record goes.
      if (fsync && !owed) await fsyncDir(newDir);
      return owed;
    }
    const written = await writeNewFile(tmpPath, withLf(prepend, content), fsync);
    if (options.quotaBytes !== undefined) {
      const used = await maildirSize(dir);
      if (used + written > options.quotaBytes) {
        await unlink(tmpPath);
        throw new LocalDeliveryError(452, '4.2.2', `Mailbox ${mailbox} is over its storage quota (${used} + ${written} > ${options.quotaBytes} bytes)`);
      }
    }
    await publish(tmpPath, path.join(newDir, `${name},S=${written}`), fsync && !owed);
    return owed;
  } catch (err) {
    if (err instanceof LocalDeliveryError) throw err;
    forgetMaildir(dir);
    await unlink(tmpPath).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new LocalDeliveryError(452, '4.3.1', `Insufficient system storage delivering to ${mailbox}`, { cause: err });
    }
    throw new LocalDeliveryError(451, '4.3.0', `Local delivery to ${mailbox} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** prepend + content with CRLF turned into LF; content in memory comes as one chunk, for one write. */
async function* withLf(prepend: string, content: string | Buffer): AsyncGenerator<Buffer> {
  const head = Buffer.from(prepend.replace(/\r\n/g, '\n'), 'utf8');
  if (Buffer.isBuffer(content)) {
    yield Buffer.concat([head, Buffer.from(content.toString('latin1').replace(/\r\n/g, '\n'), 'latin1')]);
    return;
  }
  yield head;
  // latin1 maps bytes 1:1, so 8-bit content passes through unchanged; a CR at a chunk's end waits
  // for the next chunk to see whether it starts an LF.
  let carry = '';
  for await (const chunk of createReadStream(content)) {
    let text = carry + (chunk as Buffer).toString('latin1');
    carry = text.endsWith('\r') ? '\r' : '';
    if (carry) text = text.slice(0, -1);
    yield Buffer.from(text.replace(/\r\n/g, '\n'), 'latin1');
  }
  if (carry) yield Buffer.from(carry, 'latin1');
}
