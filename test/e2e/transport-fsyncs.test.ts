/**
 * What a message costs in fsync calls, receipt to Maildir, read from an `strace -f -y` log of the
 * engine as its own process (`portcullis transport`, fsync on): smtp-source sends to one local
 * mailbox over one session, then over eight at once. Such mail is delivered at receipt: its Maildir
 * file fsynced, renamed into `new/`, and `new/` synced before the 250, nothing written to a slot. The
 * log names each synced file and directory and shows each rename and each reply, so it also shows that
 * no 250 went out before its Maildir file's fsync had ended and before a sync of `new/` begun after
 * that file's rename had ended, and that concurrent arrivals share their `new/` syncs. The receipt of
 * mail that is queued (one slot sync per message at one session, fewer at eight: group commit) is
 * counted in runs of their own, with `pre-submission` frozen.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch, smtpSource } from '../interop/peers.js';
import { freePort } from '../support/smtp-sink.js';
import { syncCalls, tracee, underStrace } from '../support/strace.js';
import { engineProcessConfig, RawSmtp, waitFor } from '../transport/engine-harness.js';

const root = path.resolve(import.meta.dirname, '../..');
const MESSAGES = 60;
/** Queued mail's receipt at one session: the slot file holding content and envelope, whose name was durable before the message came. At eight, a share of one: concurrent arrivals are committed in groups, a slot and a sync each. */
const RECEIPT_PER_MESSAGE = 1;
/** Delivered at receipt, at one session: the Maildir file and the sync of new/ after its rename. At eight, concurrent deliveries share syncs of new/. */
const PER_MESSAGE = 2;
/** Once per run: the new slot directory (its parent) and the first batch of slots made in it. */
const NEW_SLOTS = 2;
/** Once per run: the new Maildir's directory and the mailbox store that now names it. */
const NEW_MAILDIR = 2;

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-fsyncs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One syscall from the log, in the order strace saw it: a sync's start and end are two events (threads interleave). */
type Event =
  | { kind: 'sync-start' | 'sync-end'; path: string; pid: string }
  | { kind: 'rename'; to: string }
  | { kind: 'write'; path: string }
  | { kind: 'queued'; id: string };

/**
 * The events of an `strace -f -y -s <large> -e trace=fsync,fdatasync,rename,pwrite64,write,writev` log;
 * a call cut by another thread's ends at its `resumed` line. A write names the file written; a
 * `250 2.6.0 <id@host>` written to a client is `queued`.
 */
function parseLog(text: string): Event[] {
  const events: Event[] = [];
  const unfinished = new Map<string, string>();
  for (const line of text.split('\n')) {
    const pid = line.split(' ', 1)[0] ?? '';
    const write = /\b(?:pwrite64|write|writev)\(\d+<([^>]*)>/.exec(line);
    if (write) {
      // The reply on the client's socket (the tracking log's `received` line quotes it too).
      const queued = /^(?:socket:|TCP)/.test(write[1]!) ? /250 2\.6\.0 <([0-9A-Z]+)@/.exec(line) : null;
      if (queued) events.push({ kind: 'queued', id: queued[1]! });
      else events.push({ kind: 'write', path: write[1]! });
      continue;
    }
    const sync = /\b(?:fsync|fdatasync)\(\d+<([^>]*)>/.exec(line);
    if (sync) {
      events.push({ kind: 'sync-start', path: sync[1]!, pid });
      if (line.includes('<unfinished ...>')) unfinished.set(pid, sync[1]!);
      else events.push({ kind: 'sync-end', path: sync[1]!, pid });
      continue;
    }
    if (/<\.\.\. (?:fsync|fdatasync) resumed>/.test(line)) {
      const p = unfinished.get(pid);
      if (p !== undefined) events.push({ kind: 'sync-end', path: p, pid });
      unfinished.delete(pid);
      continue;
    }
    // The target is the last quoted path; a call cut by another thread is logged (target included) on its first line.
    const rename = /\brename(?:at2?)?\(.*"([^"]*)"/.exec(line);
    if (rename) events.push({ kind: 'rename', to: rename[1]! });
  }
  return events;
}

interface Counted {
  /** fsync calls per message, the once-per-run ones set aside. */
  perMessage: number;
  /** Syncs of the Maildir's `new/`. */
  newSyncs: number;
  /** Syncs of slot files, and writes into them: none when every message is delivered at receipt. */
  slotFileSyncs: number;
  slotWrites: number;
  /** 250 replies written before their Maildir file's fsync had ended. */
  beforeFileSync: number;
  /** 250 replies written before a sync of `new/`, begun after their file's rename, had ended. */
  beforeNewSync: number;
  /** 250 replies seen. */
  queued: number;
  /** Syncs by what they synced (the work folder left out), for the diagnostic. */
  synced: Record<string, number>;
}

/** Runs a fresh engine under strace, sends `MESSAGES` over `sessions` sessions, waits for the Maildir, stops the engine; reads the log. */
async function countSyncs(sessions: number): Promise<Counted> {
  const work = path.join(dir, `s${sessions}`);
  const port = await freePort();
  const admin = await freePort();
  await writeFile(path.join(dir, `s${sessions}.yaml`), engineProcessConfig(port, admin, work));
  const log = path.join(dir, `s${sessions}.strace`);
  const strace = launch('strace', [
    '-f', '-y', '-s', '1000000', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,pwrite64,write,writev', '-o', log,
    process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'transport', '--config', path.join(dir, `s${sessions}.yaml`),
  ], { cwd: dir });
  try {
    await waitFor(() => RawSmtp.connect(port).then(({ client, greeting }) => (client.close(), greeting.code === 220), () => false), 30_000, 'the engine to listen');
    await smtpSource(port, ['-s', String(sessions), '-m', String(MESSAGES), '-l', '2048', '-d', '-f', 'sender@remote.test', '-t', 'alice@example.test'], 120_000);
    const box = path.join(work, 'mailboxes', 'alice@example.test', 'new');
    await waitFor(async () => (await readdir(box).catch(() => [])).length >= MESSAGES, 60_000, 'every message in the Maildir');
  } finally {
    const engine = await tracee(strace.child.pid as number);
    if (engine !== undefined) process.kill(engine, 'SIGTERM');
    if (strace.child.exitCode === null) await once(strace.child, 'exit');
  }
  const events = parseLog(await readFile(log, 'utf8'));
  const maildir = path.join(work, 'mailboxes', 'alice@example.test');
  const newDir = path.join(maildir, 'new');
  const slotDir = path.join(work, 'queue', 'incoming');
  /** The queue id in a Maildir file's name (its part mark, `_Q<id>-1.`). */
  const idIn = (file: string): string | undefined => /_Q([0-9A-Z]+)-1\./.exec(file)?.[1];
  const syncs = events.filter((e) => e.kind === 'sync-start').length;
  const newSyncs = events.filter((e) => e.kind === 'sync-start' && e.path === newDir).length;
  // A 250 may go out only once its Maildir file's fsync has ended and a sync of new/ that began after
  // the file's rename into new/ has ended: the renames are counted in order, each sync of new/
  // covers those renamed before it began.
  const renamedAs = new Map<string, number>();
  let durable = 0;
  const startedAfter = new Map<string, number>();
  const fileSyncing = new Map<string, string>();
  const fileSynced = new Set<string>();
  let queued = 0;
  let beforeFileSync = 0;
  let beforeNewSync = 0;
  for (const e of events) {
    if (e.kind === 'rename' && e.to.startsWith(`${newDir}/`)) {
      const id = idIn(e.to);
      if (id !== undefined) renamedAs.set(id, renamedAs.size);
    } else if (e.kind === 'sync-start' && e.path === newDir) startedAfter.set(e.pid, renamedAs.size);
    else if (e.kind === 'sync-end' && e.path === newDir) durable = Math.max(durable, startedAfter.get(e.pid) ?? 0);
    else if (e.kind === 'sync-start' && e.path.startsWith(`${maildir}/tmp/`)) fileSyncing.set(e.pid, idIn(e.path) ?? '');
    else if (e.kind === 'sync-end' && e.path.startsWith(`${maildir}/tmp/`)) fileSynced.add(fileSyncing.get(e.pid) ?? '');
    else if (e.kind === 'queued') {
      queued++;
      if (!fileSynced.has(e.id)) beforeFileSync++;
      if (!((renamedAs.get(e.id) ?? Infinity) < durable)) beforeNewSync++;
    }
  }
  const byWhat: Record<string, number> = {};
  for (const e of events) {
    if (e.kind !== 'sync-start') continue;
    const what = path.relative(work, e.path).replace(/^queue\/incoming\/.*/, 'queue/incoming/<slot>').replace(/\/tmp\/.*/, '/tmp/<file>');
    byWhat[what] = (byWhat[what] ?? 0) + 1;
  }
  return {
    perMessage: (syncs - NEW_SLOTS - NEW_MAILDIR) / MESSAGES,
    newSyncs,
    slotFileSyncs: events.filter((e) => e.kind === 'sync-start' && e.path.startsWith(`${slotDir}/`)).length,
    slotWrites: events.filter((e) => e.kind === 'write' && e.path.startsWith(`${slotDir}/`)).length,
    beforeFileSync,
    beforeNewSync,
    queued,
    synced: byWhat,
  };
}

/**
 * With `pre-submission` frozen nothing but the receipt writes: the fsyncs before the 250, per message
 * (the once-per-run ones set aside), from an `strace -f -c` summary.
 */
async function receiptSyncs(sessions: number): Promise<number> {
  const name = `s${sessions}-receipt`;
  const work = path.join(dir, name);
  await mkdir(path.join(work, 'queue'), { recursive: true });
  await writeFile(path.join(work, 'queue', 'frozen-queues.json'), JSON.stringify(['pre-submission']));
  const port = await freePort();
  const admin = await freePort();
  await writeFile(path.join(dir, `${name}.yaml`), engineProcessConfig(port, admin, work));
  const summary = path.join(dir, `${name}.strace`);
  const [command, args] = underStrace(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'transport', '--config', path.join(dir, `${name}.yaml`)], summary);
  const strace = launch(command, args, { cwd: dir });
  try {
    await waitFor(() => RawSmtp.connect(port).then(({ client, greeting }) => (client.close(), greeting.code === 220), () => false), 30_000, 'the engine to listen');
    // smtp-source has had every 250 when it ends; with pre-submission frozen nothing else is written.
    await smtpSource(port, ['-s', String(sessions), '-m', String(MESSAGES), '-l', '2048', '-d', '-f', 'sender@remote.test', '-t', 'alice@example.test'], 120_000);
  } finally {
    const engine = await tracee(strace.child.pid as number);
    if (engine !== undefined) process.kill(engine, 'SIGTERM');
    if (strace.child.exitCode === null) await once(strace.child, 'exit');
  }
  return ((await syncCalls(summary)) - NEW_SLOTS) / MESSAGES;
}

test(`queued mail (pre-submission frozen): ${RECEIPT_PER_MESSAGE} fsync call per message before the 250 at one session; fewer at eight (group commit)`, async (t) => {
  const one = await receiptSyncs(1);
  const eight = await receiptSyncs(8);
  t.diagnostic(`fsyncs per message before the 250: ${one.toFixed(2)} at one session, ${eight.toFixed(2)} at eight`);
  assert.equal(one, RECEIPT_PER_MESSAGE, `${one} fsyncs per message before the 250 at one session`);
  assert.ok(eight < RECEIPT_PER_MESSAGE, `${eight} fsyncs per message before the 250 at eight sessions`);
});

test(`delivered at receipt: exactly ${PER_MESSAGE} fsync calls per message at one session (its Maildir file and new/), fewer at eight; no slot written; no 250 before its file and new/ are synced`, async (t) => {
  for (const sessions of [1, 8]) {
    const c = await countSyncs(sessions);
    t.diagnostic(
      `${sessions} session(s): ${c.perMessage.toFixed(2)} fsyncs per message, ${c.newSyncs} syncs of new/ for ${MESSAGES} messages, ` +
        `${c.slotFileSyncs} syncs of slot files; ${JSON.stringify(c.synced)}`,
    );
    if (sessions === 1) {
      assert.equal(c.perMessage, PER_MESSAGE, `${c.perMessage} fsyncs per message at one session`);
      assert.equal(c.newSyncs, MESSAGES, 'one session: one sync of new/ per message, its own');
    } else {
      assert.ok(c.perMessage < PER_MESSAGE, `${c.perMessage} fsyncs per message at ${sessions} sessions`);
      assert.ok(c.newSyncs < MESSAGES, `${c.newSyncs} syncs of new/ for ${MESSAGES} messages at ${sessions} sessions: concurrent deliveries share them`);
    }
    assert.equal(c.slotFileSyncs, 0, 'no slot synced: nothing queued');
    assert.equal(c.slotWrites, 0, 'no slot written');
    assert.equal(c.queued, MESSAGES, 'the log shows every 250');
    assert.equal(c.beforeFileSync, 0, 'no 250 before its Maildir file was synced');
    assert.equal(c.beforeNewSync, 0, 'no 250 before a sync of new/ begun after its file\'s rename had ended');
  }
});
