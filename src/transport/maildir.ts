import { mkdir, readdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { randomHex } from '../net/random-hex.js';
import { fsyncDir } from '../storage/durable-write.js';

/** The Maildir of a mailbox under the store root; the address is escaped so it is one safe path segment. */
export function mailboxDir(root: string, mailbox: string): string {
  const segment = mailbox
    .toLowerCase()
    .replace(/%/g, '%25')
    .replace(/\//g, '%2F')
    .replace(/\\/g, '%5C')
    .replace(/^\./, '%2E');
  return path.join(root, segment);
}

let counter = 0;
/** The host part of every name, escaped once: asked per delivery it was a `uname` call per message. */
let escapedHost: string | undefined;

/**
 * A unique Maildir file name in the usual `time.pid_rand.host` shape (seconds, then the process id,
 * a per-process counter and random bits, then the host with `/` and `:` escaped as the convention says).
 */
export function uniqueName(now: number = Date.now(), queueId?: string): string {
  counter = (counter + 1) % 1_000_000_000;
  const host = (escapedHost ??= hostname().replace(/\//g, '\\057').replace(/:/g, '\\072'));
  return `${Math.floor(now / 1000)}.${process.pid}_${counter}${randomHex(4)}${queueId ? queueMark(queueId) : ''}.${host}`;
}

/** What a file delivered for a queued part carries in its name, so a delivery repeated after a crash can find it. */
function queueMark(queueId: string): string {
  return `_Q${queueId}`;
}

/** Whether `new/` or `cur/` already holds the file delivered for this queued part (a reader may have moved and flagged it). */
export async function holdsDelivery(dir: string, queueId: string): Promise<boolean> {
  const mark = `${queueMark(queueId)}.`;
  for (const sub of ['new', 'cur']) {
    const names = await readdir(path.join(dir, sub)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    if (names.some((n) => n.includes(mark))) return true;
  }
  return false;
}

/** Maildirs this process has made sure of: the next delivery to one skips its four mkdir calls. */
const known = new Set<string>();
/** Maildirs being made sure of now: concurrent first deliveries to one share the work (two racing recursive mkdirs can both report a creation, and then both synced the directories). */
const making = new Map<string, Promise<void>>();

/**
 * Creates `tmp/`, `new/` and `cur/` if missing; a freshly made Maildir is fsynced up to the root. A
 * Maildir removed behind the engine's back is made again when a delivery into it fails (`forgetMaildir`).
 */
export function ensureMaildir(dir: string, fsync: boolean): Promise<void> {
  if (known.has(dir)) return Promise.resolve();
  let pending = making.get(dir);
  if (pending === undefined) {
    pending = makeMaildir(dir, fsync).finally(() => making.delete(dir));
    making.set(dir, pending);
  }
  return pending;
}

async function makeMaildir(dir: string, fsync: boolean): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(path.join(dir, sub), { recursive: true });
  if (created !== undefined && fsync) {
    await fsyncDir(dir);
    await fsyncDir(path.dirname(dir));
  }
  known.add(dir);
}

/** Makes the next `ensureMaildir` of `dir` check the disk again. */
export function forgetMaildir(dir: string): void {
  known.delete(dir);
}

/** Bytes held in `new/` and `cur/`, from the Maildir++ `,S=` size in each name, else by stat. */
export async function maildirSize(dir: string): Promise<number> {
  let total = 0;
  for (const sub of ['new', 'cur']) {
    const names = await readdir(path.join(dir, sub)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    for (const name of names) {
      const m = /,S=(\d+)/.exec(name);
      total += m ? Number(m[1]) : (await stat(path.join(dir, sub, name))).size;
    }
  }
  return total;
}
