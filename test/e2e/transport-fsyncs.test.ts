/**
 * What a message costs in fsync calls, receipt to Maildir, counted by `strace -f -c` around the engine
 * as its own process (`portcullis transport`, fsync on): smtp-source sends to one local mailbox over
 * one session, then over eight at once, where arrivals share the directory fsyncs (group commit).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launch, smtpSource } from '../interop/peers.js';
import { freePort } from '../support/smtp-sink.js';
import { syncCalls, tracee, underStrace } from '../support/strace.js';
import { RawSmtp, waitFor } from '../transport/engine-harness.js';

const root = path.resolve(import.meta.dirname, '../..');
const MESSAGES = 40;
/** Receipt: the content, the envelope beside it, and their directory (content/); delivery: the Maildir file and new/. */
const MOST_PER_MESSAGE = 5;
/** Once per run: the new Maildir's directory and the mailbox store that now names it. */
const NEW_MAILDIR = 2;

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-fsyncs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a fresh engine under strace, sends `MESSAGES` over `sessions` sessions, waits for the Maildir; fsyncs per message (the new Maildir's set aside). */
async function fsyncsPerMessage(sessions: number): Promise<number> {
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
  const summary = path.join(dir, `s${sessions}.strace`);
  const [command, args] = underStrace(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'transport', '--config', path.join(dir, `s${sessions}.yaml`)], summary);
  const strace = launch(command, args, { cwd: dir });
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
  return ((await syncCalls(summary)) - NEW_MAILDIR) / MESSAGES;
}

test(`at most ${MOST_PER_MESSAGE} fsync calls per message from receipt to Maildir at one session, no more at eight`, async (t) => {
  const one = await fsyncsPerMessage(1);
  const eight = await fsyncsPerMessage(8);
  t.diagnostic(`fsyncs per message: ${one.toFixed(2)} at 1 session, ${eight.toFixed(2)} at 8 sessions`);
  assert.ok(one <= MOST_PER_MESSAGE, `${one} fsyncs per message at one session`);
  assert.ok(eight <= MOST_PER_MESSAGE, `${eight} fsyncs per message at eight sessions`);
});
