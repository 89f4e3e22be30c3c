/**
 * What a message costs in fsync calls, receipt to Maildir, read from an `strace -f -y` log of the
 * engine as its own process (`portcullis transport`, fsync on): smtp-source sends to one local
 * mailbox over one session, then over eight at once. The log names each synced file and directory and
 * shows what each slot write held and each reply said, so it also shows that concurrent arrivals share
 * a slot and its sync (group commit) while one session syncs each message's slot alone, that no 250
 * went out before a finished sync of the slot its record was written into, that the deliveries share
 * their `new/` syncs across time, and that no slot was emptied (its records released) before a sync of
 * `new/` had made as many Maildir files durable. The receipt alone (before the 250) is counted in runs
 * of their own, with `pre-submission` frozen.
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
/** Receipt at one session: the slot file holding content and envelope, whose name was durable before the message came. At eight, a share of one: concurrent arrivals are committed in groups, a slot and a sync each. */
const RECEIPT_PER_MESSAGE = 1;
/** Each message's own: its slot file before the 250, its Maildir file at delivery. Shared: syncs of new/ (and of incoming/ when a burst needs a new batch of slots). */
const MOST_PER_MESSAGE = 2;
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
  | { kind: 'unlink'; path: string }
  | { kind: 'empty'; path: string }
  | { kind: 'write'; path: string; ids: string[] }
  | { kind: 'queued'; id: string };

/**
 * The events of an `strace -f -y -s <large> -e trace=fsync,fdatasync,rename,unlink,ftruncate,pwrite64,write,writev` log;
 * a call cut by another thread's ends at its `resumed` line. A write names the queue ids of the records
 * it holds (their envelopes' `contentId`); a `250 2.6.0 <id@host>` written to a client is `queued`.
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
      else events.push({ kind: 'write', path: write[1]!, ids: [...line.matchAll(/\\"contentId\\":\\"([0-9A-Z]+)\\"/g)].map((m) => m[1]!) });
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
    const unlink = /\bunlink(?:at)?\((?:\w+, )?"([^"]*)"/.exec(line);
    if (unlink) events.push({ kind: 'unlink', path: unlink[1]! });
    const empty = /\bftruncate\(\d+<([^>]*)>, 0/.exec(line);
    if (empty) events.push({ kind: 'empty', path: empty[1]! });
  }
  return events;
}

interface Counted {
  /** fsync calls per message, the new Maildir's set aside. */
  perMessage: number;
  /** Syncs of the Maildir's `new/`. */
  newSyncs: number;
  /** Syncs of `incoming/` after its first batch (a burst that found no free slot). */
  slotSyncs: number;
  /** Syncs of slot files (each a record or a group of them). */
  slotFileSyncs: number;
  /** Records in the largest group a slot write held. */
  largestGroup: number;
  /** 250 replies written before a finished sync of the slot holding their record had begun after its write. */
  queuedEarly: number;
  /** 250 replies seen. */
  queued: number;
  /** Slot emptyings that came when fewer Maildir files were durable (renamed before a finished sync of `new/` began) than records in the slots emptied so far. */
  emptiedEarly: number;
  /** Slots emptied, as the log shows. */
  emptied: number;
  /** Records in the slots emptied (each slot's last write before its emptying). */
  emptiedRecords: number;
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
    '-f', '-y', '-s', '1000000', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,ftruncate,pwrite64,write,writev', '-o', log,
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
  const newDir = path.join(work, 'mailboxes', 'alice@example.test', 'new');
  const slotDir = path.join(work, 'queue', 'incoming');
  const syncs = events.filter((e) => e.kind === 'sync-start').length;
  const newSyncs = events.filter((e) => e.kind === 'sync-start' && e.path === newDir).length;
  const slotSyncs = events.filter((e) => e.kind === 'sync-start' && e.path === slotDir).length - 1;
  // Each message went straight from its slot into the Maildir: a record may be released only once its
  // Maildir file is durable, so at every emptying of a slot the durable Maildir files (renamed into new/
  // before a sync of new/ that has since finished began) must outnumber the records in the slots emptied
  // so far. And a 250 may go out only after a sync of its record's slot, begun after the record's write, has ended.
  let renamed = 0;
  let durable = 0;
  let emptied = 0;
  let emptiedRecords = 0;
  let emptiedEarly = 0;
  let queued = 0;
  let queuedEarly = 0;
  let largestGroup = 0;
  const startedAfter = new Map<string, number>();
  /** Per slot, the records of its last write, and which of them a sync has begun on. */
  const written = new Map<string, string[]>();
  const syncing = new Map<string, string[]>();
  const synced = new Set<string>();
  for (const e of events) {
    const inSlot = 'path' in e && e.path.startsWith(`${slotDir}/`);
    if (e.kind === 'rename' && e.to.startsWith(`${newDir}/`)) renamed++;
    else if (e.kind === 'sync-start' && e.path === newDir) startedAfter.set(e.pid, renamed);
    else if (e.kind === 'sync-end' && e.path === newDir) durable = Math.max(durable, startedAfter.get(e.pid) ?? 0);
    else if (e.kind === 'write' && inSlot) {
      written.set(e.path, e.ids);
      largestGroup = Math.max(largestGroup, e.ids.length);
    } else if (e.kind === 'sync-start' && inSlot) syncing.set(e.pid, written.get(e.path) ?? []);
    else if (e.kind === 'sync-end' && inSlot) for (const id of syncing.get(e.pid) ?? []) synced.add(id);
    else if (e.kind === 'queued') {
      queued++;
      if (!synced.has(e.id)) queuedEarly++;
    } else if (e.kind === 'empty' && inSlot) {
      emptied++;
      emptiedRecords += written.get(e.path)?.length ?? 0;
      if (emptiedRecords > durable) emptiedEarly++;
    }
  }
  const slotFileSyncs = events.filter((e) => e.kind === 'sync-start' && e.path.startsWith(`${slotDir}/`)).length;
  const byWhat: Record<string, number> = {};
  for (const e of events) {
    if (e.kind !== 'sync-start') continue;
    const what = path.relative(work, e.path).replace(/^queue\/incoming\/.*/, 'queue/incoming/<slot>').replace(/\/tmp\/.*/, '/tmp/<file>');
    byWhat[what] = (byWhat[what] ?? 0) + 1;
  }
  return {
    perMessage: (syncs - NEW_SLOTS - NEW_MAILDIR) / MESSAGES,
    newSyncs,
    slotSyncs,
    slotFileSyncs,
    largestGroup,
    queued,
    queuedEarly,
    emptiedEarly,
    emptied,
    emptiedRecords,
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

test(`${RECEIPT_PER_MESSAGE} fsync call per message before the 250 at one session; fewer at eight (group commit)`, async (t) => {
  const one = await receiptSyncs(1);
  const eight = await receiptSyncs(8);
  t.diagnostic(`fsyncs per message before the 250: ${one.toFixed(2)} at one session, ${eight.toFixed(2)} at eight`);
  assert.equal(one, RECEIPT_PER_MESSAGE, `${one} fsyncs per message before the 250 at one session`);
  assert.ok(eight < RECEIPT_PER_MESSAGE, `${eight} fsyncs per message before the 250 at eight sessions`);
});

test(`at most ${MOST_PER_MESSAGE} fsync calls per message of its own and a share of new/ syncs, at one session and at eight; no slot emptied before its Maildir file is durable`, async (t) => {
  for (const sessions of [1, 8]) {
    const c = await countSyncs(sessions);
    t.diagnostic(
      `${sessions} session(s): ${c.perMessage.toFixed(2)} fsyncs per message, ${c.slotFileSyncs} syncs of slot files (largest group ${c.largestGroup}), ` +
        `${c.newSyncs} syncs of new/ and ${c.slotSyncs} of incoming/ for ${MESSAGES} deliveries, ${c.emptied} slots emptied; ${JSON.stringify(c.synced)}`,
    );
    assert.ok(c.perMessage <= MOST_PER_MESSAGE + (c.newSyncs + c.slotSyncs) / MESSAGES, `${c.perMessage} fsyncs per message at ${sessions} session(s)`);
    // One sync of new/ per delivery before; now one per batch (100 ms or 64 deliveries).
    assert.ok(c.newSyncs <= MESSAGES / 4, `${c.newSyncs} syncs of new/ for ${MESSAGES} deliveries at ${sessions} session(s)`);
    if (sessions === 1) assert.equal(c.slotFileSyncs, MESSAGES, 'one session: each record alone in its slot, one sync each');
    else assert.ok(c.slotFileSyncs < MESSAGES && c.largestGroup > 1, `${c.slotFileSyncs} slot syncs for ${MESSAGES} messages at ${sessions} sessions (largest group ${c.largestGroup})`);
    assert.equal(c.queued, MESSAGES, 'the log shows every 250');
    assert.equal(c.queuedEarly, 0, 'no 250 before the sync of the slot holding its record');
    assert.equal(c.emptiedRecords, MESSAGES, 'the log shows every slot emptied, with every record written');
    if (sessions === 1) assert.equal(c.emptied, MESSAGES, 'one slot emptied per message at one session');
    assert.equal(c.emptiedEarly, 0, 'no slot was emptied before as many Maildir files were durable as records were in the slots emptied');
  }
});
