/**
 * What a message costs in fsync calls, receipt to Maildir, read from an `strace -f -y` log of the
 * engine as its own process (`portcullis transport`, fsync on): smtp-source sends to one local
 * mailbox over one session, then over eight at once, where arrivals share the directory fsyncs
 * (group commit). The log names each synced directory, so it also shows that the deliveries share
 * their `new/` syncs across time, and that no record was removed before the sync of `new/` covering
 * its Maildir file had finished.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch, smtpSource } from '../interop/peers.js';
import { freePort } from '../support/smtp-sink.js';
import { tracee } from '../support/strace.js';
import { RawSmtp, waitFor } from '../transport/engine-harness.js';

const root = path.resolve(import.meta.dirname, '../..');
const MESSAGES = 60;
/** Each message's own: the content, the envelope beside it, their directory (content/) before the 250; the Maildir file at delivery. */
const MOST_PER_MESSAGE = 4;
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
type Event = { kind: 'sync-start' | 'sync-end'; path: string; pid: string } | { kind: 'rename'; to: string } | { kind: 'unlink'; path: string };

/** The events of an `strace -f -y -e trace=fsync,fdatasync,rename,unlink` log; a call cut by another thread's ends at its `resumed` line. */
function parseLog(text: string): Event[] {
  const events: Event[] = [];
  const unfinished = new Map<string, string>();
  for (const line of text.split('\n')) {
    const pid = line.split(' ', 1)[0] ?? '';
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
  }
  return events;
}

interface Counted {
  /** fsync calls per message, the new Maildir's set aside. */
  perMessage: number;
  /** Syncs of the Maildir's `new/`. */
  newSyncs: number;
  /** Messages whose record went before a sync of `new/` that started after the rename of their Maildir file had ended. */
  removedEarly: string[];
  /** Messages whose Maildir file and record removal the log shows. */
  checked: number;
}

/** Runs a fresh engine under strace, sends `MESSAGES` over `sessions` sessions, waits for the Maildir, stops the engine; reads the log. */
async function countSyncs(sessions: number): Promise<Counted> {
  const work = path.join(dir, `s${sessions}`);
  const port = await freePort();
  const admin = await freePort();
  await writeFile(
    path.join(dir, `s${sessions}.yaml`),
    [
      'hostname: mx.example.test',
      'acceptedDomains: [example.test]',
      'listeners: [{ name: edge, listen: "127.0.0.1:2525" }]',
      'directory: { addresses: [alice@example.test] }',
      'log: { level: warn }',
      'transport:',
      `  listen: 127.0.0.1:${port}`,
      `  admin: { listen: "127.0.0.1:${admin}" }`,
      `  dataDir: ${work}`,
      '  fsync: true',
      '',
    ].join('\n'),
  );
  const log = path.join(dir, `s${sessions}.strace`);
  const strace = launch('strace', [
    '-f', '-y', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat', '-o', log,
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
  const syncs = events.filter((e) => e.kind === 'sync-start').length;
  const newSyncs = events.filter((e) => e.kind === 'sync-start' && e.path === newDir).length;
  // Each message went straight from pre-submission (content/<id>.json) into the Maildir as part <id>-1.
  const removedEarly: string[] = [];
  let checked = 0;
  events.forEach((e, i) => {
    const id = e.kind === 'rename' && e.to.startsWith(`${newDir}/`) ? /_Q(\w+)-1\./.exec(e.to)?.[1] : undefined;
    if (id === undefined) return;
    const removal = events.findIndex((r, j) => j > i && r.kind === 'unlink' && r.path === path.join(work, 'queue', 'content', `${id}.json`));
    if (removal < 0) return;
    checked++;
    // A sync of new/ that started after the rename, and ended (on the same thread) before the removal.
    const inFlight = new Set<string>();
    let covered = false;
    for (let j = i + 1; j < removal && !covered; j++) {
      const s = events[j]!;
      if (s.kind === 'sync-start' && s.path === newDir) inFlight.add(s.pid);
      if (s.kind === 'sync-end' && s.path === newDir && inFlight.has(s.pid)) covered = true;
    }
    if (!covered) removedEarly.push(id);
  });
  return { perMessage: (syncs - NEW_MAILDIR) / MESSAGES, newSyncs, removedEarly, checked };
}

test(`at most ${MOST_PER_MESSAGE} fsync calls per message of its own and a share of new/ syncs, at one session and at eight; no record removed before its new/ sync`, async (t) => {
  for (const sessions of [1, 8]) {
    const c = await countSyncs(sessions);
    t.diagnostic(`${sessions} session(s): ${c.perMessage.toFixed(2)} fsyncs per message, ${c.newSyncs} syncs of new/ for ${MESSAGES} deliveries, ${c.checked} removals checked`);
    assert.ok(c.perMessage <= MOST_PER_MESSAGE + c.newSyncs / MESSAGES, `${c.perMessage} fsyncs per message at ${sessions} session(s)`);
    // One sync of new/ per delivery before; now one per batch (100 ms or 64 deliveries).
    assert.ok(c.newSyncs <= MESSAGES / 4, `${c.newSyncs} syncs of new/ for ${MESSAGES} deliveries at ${sessions} session(s)`);
    assert.equal(c.checked, MESSAGES, 'the log shows every delivery and removal');
    assert.deepEqual(c.removedEarly, [], 'every record outlived a sync of new/ that started after its Maildir file was renamed there');
  }
});
