/**
 * The file operations a message costs the engine beyond its syncs, read from an `strace -f -y` log of
 * the engine as its own process (`portcullis transport`, fsync on): smtp-source sends 2 KB messages
 * to one local mailbox over eight sessions. Each async file call is a round trip through libuv's
 * thread pool, so the ones that are not needed must stay gone. Such mail is delivered at receipt: no
 * slot is touched, the Maildir file is one write, the tracking log is opened once, no removal of a
 * content file that was never made, no getpid per message (OpenSSL's fork check on every randomBytes
 * call). Mail that is queued (a run with `pre-submission` frozen) goes into slots: a slot file is used
 * through the descriptor it was made with, never opened again by name, and its record (or the group
 * of records it holds, committed together) is one write.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TrackingEvent } from '../../src/transport/tracking-log.js';
import { launch, smtpSource } from '../interop/peers.js';
import { freePort } from '../support/smtp-sink.js';
import { tracee } from '../support/strace.js';
import { engineProcessConfig, RawSmtp, waitFor } from '../transport/engine-harness.js';

const root = path.resolve(import.meta.dirname, '../..');
/** More than a batch of slot files (64), so queued mail needs a second batch. */
const MESSAGES = 200;
const SESSIONS = 8;

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-fileops-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One traced call: its name, the path it named (or whose descriptor it used), and whether it failed. */
interface Call {
  name: string;
  path: string;
  flags: string;
  failed: boolean;
  /** For a write: the queue ids of the records it holds (their envelopes' `contentId`). */
  ids: string[];
}

/** The calls of an `strace -f -y` log; a call cut by another thread is read from its first line (name, path and flags are there). */
function parseLog(text: string): Call[] {
  const calls: Call[] = [];
  const unfinished = new Map<string, number>();
  for (const line of text.split('\n')) {
    const pid = line.split(' ', 1)[0] ?? '';
    const resumed = /<\.\.\. \w+ resumed>.*= (-?\d+)/.exec(line);
    if (resumed) {
      const i = unfinished.get(pid);
      if (i !== undefined) calls[i]!.failed = resumed[1]!.startsWith('-');
      unfinished.delete(pid);
      continue;
    }
    const m = /^\d+\s+(\w+)\((.*)$/.exec(line);
    if (!m) continue;
    const [, name, rest] = m as unknown as [string, string, string];
    const named = /^(?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]*)"(.*)$/.exec(rest) ?? /^\d+<([^>]*)>(.*)$/.exec(rest);
    const ids = [...rest.matchAll(/\\"contentId\\":\\"([0-9A-Z]+)\\"/g)].map((r) => r[1]!);
    calls.push({ name, path: named?.[1] ?? '', flags: named?.[2] ?? '', failed: / = -1 /.test(rest), ids });
    if (rest.includes('<unfinished ...>')) unfinished.set(pid, calls.length - 1);
  }
  return calls;
}

/** Runs a fresh engine under strace (`pre-submission` frozen if asked), sends `MESSAGES` over `SESSIONS` sessions, waits for them, stops it; its calls and work folder. */
async function traced(name: string, frozen: boolean): Promise<{ calls: Call[]; work: string }> {
  const work = path.join(dir, name);
  const port = await freePort();
  const admin = await freePort();
  if (frozen) {
    await mkdir(path.join(work, 'queue'), { recursive: true });
    await writeFile(path.join(work, 'queue', 'frozen-queues.json'), JSON.stringify(['pre-submission']));
  }
  await writeFile(path.join(dir, `${name}.yaml`), engineProcessConfig(port, admin, work));
  const log = path.join(dir, `${name}.strace`);
  const strace = launch('strace', [
    '-f', '-y', '-s', '1000000', '-e', 'trace=openat,write,pwrite64,unlink,getpid', '-o', log,
    process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'transport', '--config', path.join(dir, `${name}.yaml`),
  ], { cwd: dir });
  const tracked = path.join(work, 'tracking.log');
  try {
    await waitFor(() => RawSmtp.connect(port).then(({ client, greeting }) => (client.close(), greeting.code === 220), () => false), 30_000, 'the engine to listen');
    // smtp-source has had every 250 when it ends.
    await smtpSource(port, ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', '2048', '-d', '-f', 'sender@remote.test', '-t', 'alice@example.test'], 120_000);
    const lines = frozen ? MESSAGES : 3 * MESSAGES;
    await waitFor(async () => (await readFile(tracked, 'utf8').catch(() => '')).split('\n').length > lines, 10_000, 'every tracking line');
  } finally {
    const engine = await tracee(strace.child.pid as number);
    if (engine !== undefined) process.kill(engine, 'SIGTERM');
    if (strace.child.exitCode === null) await once(strace.child, 'exit');
  }
  return { calls: parseLog(await readFile(log, 'utf8')), work };
}

const isWrite = (c: Call): boolean => c.name === 'write' || c.name === 'pwrite64';

test(`delivered at receipt, per message over ${SESSIONS} sessions: no slot touched, one write of its Maildir file, no failing unlink, no getpid; the tracking log opened once and complete`, async (t) => {
  const { calls, work } = await traced('receipt', false);
  const slotDir = path.join(work, 'queue', 'incoming');
  const box = path.join(work, 'mailboxes', 'alice@example.test');
  const slotOpens = calls.filter((c) => c.name === 'openat' && c.path.startsWith(`${slotDir}/`) && !c.flags.includes('O_CREAT')).length;
  const slotWrites = calls.filter((c) => isWrite(c) && c.path.startsWith(`${slotDir}/`)).length;
  const maildirWrites = calls.filter((c) => isWrite(c) && c.path.startsWith(`${box}/tmp/`));
  const failedUnlinks = calls.filter((c) => c.name === 'unlink' && c.failed).map((c) => c.path);
  const trackingOpens = calls.filter((c) => c.name === 'openat' && c.path === path.join(work, 'tracking.log')).length;
  // getpid from the first message on: node's own at start and smtp-server's one per session set aside.
  const first = calls.findIndex((c) => isWrite(c) && c.path.startsWith(`${box}/tmp/`));
  const getpids = calls.slice(first).filter((c) => c.name === 'getpid').length;
  t.diagnostic(`${slotOpens} slot opens, ${slotWrites} slot writes, ${maildirWrites.length} Maildir writes, ${failedUnlinks.length} failed unlinks, tracking log opened ${trackingOpens} times, ${getpids} getpid for ${MESSAGES} messages`);
  assert.ok(first >= 0, 'the log shows the Maildir writes');
  assert.equal(slotOpens, 0, 'no slot file opened');
  assert.equal(slotWrites, 0, 'no slot written: nothing queued');
  assert.equal(maildirWrites.length, MESSAGES, 'one write per Maildir file');
  assert.equal(new Set(maildirWrites.map((c) => c.path)).size, MESSAGES, 'each into a file of its own');
  assert.deepEqual(failedUnlinks, [], 'no unlink that fails');
  assert.equal(trackingOpens, 1, 'the tracking log opened once');
  assert.ok(getpids <= SESSIONS + MESSAGES / 10, `${getpids} getpid calls for ${MESSAGES} messages over ${SESSIONS} sessions`);

  const events = (await readFile(path.join(work, 'tracking.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as TrackingEvent);
  const ids = new Set(events.map((e) => e.id));
  assert.equal(ids.size, MESSAGES, 'a received id per message');
  for (const id of ids) {
    const seen = events.filter((e) => e.id === id).map((e) => e.event);
    assert.deepEqual(seen, ['received', 'submitted', 'delivered'], `${id}: ${seen.join(', ')}`);
  }
});

test(`queued (pre-submission frozen), per message over ${SESSIONS} sessions: one write and no open of its slot file`, async (t) => {
  const { calls, work } = await traced('queued', true);
  const slotDir = path.join(work, 'queue', 'incoming');
  const inSlot = (c: Call): boolean => c.path.startsWith(`${slotDir}/`);
  // Slot files are made (O_CREAT) in batches and kept open; an open by name (O_RDWR) would be one per use.
  const slotOpens = new Map<string, number>();
  for (const c of calls) if (c.name === 'openat' && inSlot(c) && !c.flags.includes('O_CREAT') && c.flags.includes('O_RDWR')) slotOpens.set(c.path, (slotOpens.get(c.path) ?? 0) + 1);
  const slotWriteCalls = calls.filter((c) => isWrite(c) && inSlot(c));
  const slotRecords = slotWriteCalls.flatMap((c) => c.ids);
  t.diagnostic(`slot files opened ${[...slotOpens.values()].reduce((a, b) => a + b, 0)} times (${slotOpens.size} files), ${slotWriteCalls.length} slot writes of ${slotRecords.length} records for ${MESSAGES} messages`);
  assert.deepEqual(Object.fromEntries(slotOpens), {}, 'no slot file opened again by name: each is written through the descriptor it was made with');
  assert.equal(new Set(slotRecords).size, MESSAGES, 'every record written into a slot');
  assert.equal(slotRecords.length, MESSAGES, 'each record written once');
  assert.ok(slotWriteCalls.every((c) => c.ids.length > 0), 'one write per slot use: a record, or a group of them, whole');
  assert.ok(slotWriteCalls.length <= MESSAGES, `${slotWriteCalls.length} slot writes for ${MESSAGES} records`);
});
