/**
 * What a message costs in fsync calls, receipt to Maildir, counted by `strace -f -c` around the engine
 * as its own process (`portcullis transport`, fsync on): smtp-source sends to one local mailbox over
 * one session, then over eight at once, where deliveries share the directory fsyncs (group commit).
 * The receipt alone (before the 250) is counted in runs of their own, with `pre-submission` frozen.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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
/** Receipt: the slot file holding content and envelope, whose name was durable before the message came. */
const RECEIPT_PER_MESSAGE = 1;
/** Receipt, then delivery: the Maildir file and new/. */
const MOST_PER_MESSAGE = 3;
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

/**
 * Runs a fresh engine under strace, sends `MESSAGES` over `sessions` sessions, waits for the Maildir;
 * fsyncs per message (the once-per-run ones set aside). `receiptOnly`: with `pre-submission` frozen, so
 * only what comes before the 250 is counted.
 */
async function fsyncsPerMessage(sessions: number, receiptOnly = false): Promise<number> {
  const name = `s${sessions}${receiptOnly ? '-receipt' : ''}`;
  const work = path.join(dir, name);
  if (receiptOnly) {
    await mkdir(path.join(work, 'queue'), { recursive: true });
    await writeFile(path.join(work, 'queue', 'frozen-queues.json'), JSON.stringify(['pre-submission']));
  }
  const port = await freePort();
  const admin = await freePort();
  await writeFile(
    path.join(dir, `${name}.yaml`),
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
  const summary = path.join(dir, `${name}.strace`);
  const [command, args] = underStrace(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'transport', '--config', path.join(dir, `${name}.yaml`)], summary);
  const strace = launch(command, args, { cwd: dir });
  try {
    await waitFor(() => RawSmtp.connect(port).then(({ client, greeting }) => (client.close(), greeting.code === 220), () => false), 30_000, 'the engine to listen');
    await smtpSource(port, ['-s', String(sessions), '-m', String(MESSAGES), '-l', '2048', '-d', '-f', 'sender@remote.test', '-t', 'alice@example.test'], 120_000);
    // smtp-source has had every 250 by now; with pre-submission frozen nothing else is written.
    const box = path.join(work, 'mailboxes', 'alice@example.test', 'new');
    if (!receiptOnly) await waitFor(async () => (await readdir(box).catch(() => [])).length >= MESSAGES, 60_000, 'every message in the Maildir');
  } finally {
    const engine = await tracee(strace.child.pid as number);
    if (engine !== undefined) process.kill(engine, 'SIGTERM');
    if (strace.child.exitCode === null) await once(strace.child, 'exit');
  }
  return ((await syncCalls(summary)) - NEW_SLOTS - (receiptOnly ? 0 : NEW_MAILDIR)) / MESSAGES;
}

test(`${RECEIPT_PER_MESSAGE} fsync call per message before the 250, at one session and at eight`, async (t) => {
  const one = await fsyncsPerMessage(1, true);
  const eight = await fsyncsPerMessage(8, true);
  t.diagnostic(`fsyncs per message before the 250: ${one.toFixed(2)} at 1 session, ${eight.toFixed(2)} at 8 sessions`);
  assert.equal(one, RECEIPT_PER_MESSAGE, `${one} fsyncs per message at one session`);
  assert.equal(eight, RECEIPT_PER_MESSAGE, `${eight} fsyncs per message at eight sessions`);
});

test(`at most ${MOST_PER_MESSAGE} fsync calls per message from receipt to Maildir at one session, no more at eight`, async (t) => {
  const one = await fsyncsPerMessage(1);
  const eight = await fsyncsPerMessage(8);
  t.diagnostic(`fsyncs per message: ${one.toFixed(2)} at 1 session, ${eight.toFixed(2)} at 8 sessions`);
  assert.ok(one <= MOST_PER_MESSAGE, `${one} fsyncs per message at one session`);
  assert.ok(eight <= MOST_PER_MESSAGE, `${eight} fsyncs per message at eight sessions`);
});
