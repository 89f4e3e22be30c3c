/**
 * The file operations a message costs the engine beyond its syncs, read from an `strace -f -y` log of
 * the engine as its own process (`portcullis transport`, fsync on): smtp-source sends 2 KB messages
 * to one local mailbox over eight sessions. Each async file call is a round trip through libuv's
 * thread pool, so the ones that are not needed must stay gone: a slot file is used through the
 * descriptor it was made with, never opened again by name, and its record (or the group of records it
 * holds, committed together) is one write; the tracking log is opened once; the
 * Maildir file is one write; no removal of a content file that was never made; no getpid per message
 * (OpenSSL's fork check on every randomBytes call).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { TrackingEvent } from '../../src/transport/tracking-log.js';
import { launch, smtpSource } from '../interop/peers.js';
import { freePort } from '../support/smtp-sink.js';
import { tracee } from '../support/strace.js';
import { engineProcessConfig, RawSmtp, waitFor } from '../transport/engine-harness.js';

const root = path.resolve(import.meta.dirname, '../..');
/** More than a batch of slot files (64), so slots are reused. */
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

test(`per message over ${SESSIONS} sessions: one write and no open of its slot file, one write of its Maildir file, no failing unlink, no getpid; the tracking log opened once and complete`, async (t) => {
  const work = path.join(dir, 'data');
  const port = await freePort();
  const admin = await freePort();
  await writeFile(path.join(dir, 'rules.yaml'), engineProcessConfig(port, admin, work));
  const log = path.join(dir, 'engine.strace');
  const strace = launch('strace', [
    '-f', '-y', '-s', '1000000', '-e', 'trace=openat,write,pwrite64,unlink,getpid', '-o', log,
    process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'transport', '--config', path.join(dir, 'rules.yaml'),
  ], { cwd: dir });
  const box = path.join(work, 'mailboxes', 'alice@example.test');
  try {
    await waitFor(() => RawSmtp.connect(port).then(({ client, greeting }) => (client.close(), greeting.code === 220), () => false), 30_000, 'the engine to listen');
    await smtpSource(port, ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', '2048', '-d', '-f', 'sender@remote.test', '-t', 'alice@example.test'], 120_000);
    await waitFor(async () => (await readdir(path.join(box, 'new')).catch(() => [])).length >= MESSAGES, 60_000, 'every message in the Maildir');
    const tracked = path.join(work, 'tracking.log');
    await waitFor(async () => (await readFile(tracked, 'utf8').catch(() => '')).split('\n').length > 2 * MESSAGES, 10_000, 'every tracking line');
  } finally {
    const engine = await tracee(strace.child.pid as number);
    if (engine !== undefined) process.kill(engine, 'SIGTERM');
    if (strace.child.exitCode === null) await once(strace.child, 'exit');
  }
  const calls = parseLog(await readFile(log, 'utf8'));
  const slotDir = path.join(work, 'queue', 'incoming');
  const inSlot = (c: Call): boolean => c.path.startsWith(`${slotDir}/`);
  // Slot files are made (O_CREAT) in batches and kept open; an open by name (O_RDWR) would be one per use.
  const slotOpens = new Map<string, number>();
  for (const c of calls) if (c.name === 'openat' && inSlot(c) && !c.flags.includes('O_CREAT') && c.flags.includes('O_RDWR')) slotOpens.set(c.path, (slotOpens.get(c.path) ?? 0) + 1);
  const slotWriteCalls = calls.filter((c) => (c.name === 'write' || c.name === 'pwrite64') && inSlot(c));
  const slotWrites = slotWriteCalls.length;
  const slotRecords = slotWriteCalls.flatMap((c) => c.ids);
  const maildirWrites = calls.filter((c) => (c.name === 'write' || c.name === 'pwrite64') && c.path.startsWith(`${box}/tmp/`)).length;
  const failedUnlinks = calls.filter((c) => c.name === 'unlink' && c.failed).map((c) => c.path);
  const trackingOpens = calls.filter((c) => c.name === 'openat' && c.path === path.join(work, 'tracking.log')).length;
  // getpid from the first message on: node's own at start and smtp-server's one per session set aside.
  const first = calls.findIndex((c) => c.name === 'pwrite64' && inSlot(c));
  const getpids = calls.slice(first).filter((c) => c.name === 'getpid').length;
  t.diagnostic(`slot files opened ${[...slotOpens.values()].reduce((a, b) => a + b, 0)} times (${slotOpens.size} files), ${slotWrites} slot writes of ${slotRecords.length} records, ${maildirWrites} Maildir writes, ${failedUnlinks.length} failed unlinks, tracking log opened ${trackingOpens} times, ${getpids} getpid for ${MESSAGES} messages`);
  assert.ok(first >= 0, 'the log shows the slot writes');
  assert.deepEqual(Object.fromEntries(slotOpens), {}, 'no slot file opened again by name: each is written through the descriptor it was made with');
  assert.equal(new Set(slotRecords).size, MESSAGES, 'every record written into a slot');
  assert.equal(slotRecords.length, MESSAGES, 'each record written once');
  assert.ok(slotWriteCalls.every((c) => c.ids.length > 0), 'one write per slot use: a record, or a group of them, whole');
  assert.ok(slotWrites <= MESSAGES, `${slotWrites} slot writes for ${MESSAGES} records`);
  assert.equal(maildirWrites, MESSAGES, 'one write per Maildir file');
  assert.deepEqual(failedUnlinks, [], 'no unlink that fails');
  assert.equal(trackingOpens, 1, 'the tracking log opened once');
  assert.ok(getpids <= SESSIONS + MESSAGES / 10, `${getpids} getpid calls for ${MESSAGES} messages over ${SESSIONS} sessions`);

  const events = (await readFile(path.join(work, 'tracking.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as TrackingEvent);
  const ids = new Set(events.map((e) => e.id));
  assert.equal(ids.size, MESSAGES, 'a received id per message');
  for (const id of ids) {
    const seen = events.filter((e) => e.id === id).map((e) => e.event);
    assert.ok(seen[0] === 'received' && seen.at(-1) === 'delivered' && seen.filter((e) => e === 'delivered').length === 1, `${id}: received first, delivered once and last: ${seen.join(', ')}`);
  }
});
