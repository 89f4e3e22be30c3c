/**
 * What `npm start` does on a fresh clone: `portcullis serve` with the default rules/portcullis.yaml
 * (no back end configured, so the bundled engine runs in the same process), then swaks to a
 * configured mailbox, which must land in its Maildir under ./data.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

const root = path.resolve(import.meta.dirname, '../..');
let clone: string;

before(async () => {
  clone = await mkdtemp(path.join(tmpdir(), 'portcullis-fresh-'));
  await mkdir(path.join(clone, 'rules'));
  await copyFile(path.join(root, 'rules/portcullis.yaml'), path.join(clone, 'rules/portcullis.yaml'));
});
after(async () => {
  await rm(clone, { recursive: true, force: true });
});

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('serve with the default rule set brings up edge and engine; swaks to alice lands in her Maildir', async () => {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src/cli/main.ts'), 'serve'], { cwd: clone, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    for (let i = 0; i < 300 && !(await listening(2525)); i++) {
      assert.equal(child.exitCode, null, `serve exited early:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(await listening(2526), 'the engine listens on 127.0.0.1:2526');
    const { stdout } = await promisify(execFile)('swaks', ['--server', '127.0.0.1:2525', '--to', 'alice@example.test', '--from', 'bob@sender.test'], { timeout: 60_000 });
    assert.match(stdout, /<- {1,2}250 2\.6\.0 <[^@>]+@mx\.example\.test> Queued mail for delivery/);

    const newDir = path.join(clone, 'data', 'mailboxes', 'alice@example.test', 'new');
    let files: string[] = [];
    for (let i = 0; i < 200 && files.length === 0; i++) {
      files = await readdir(newDir).catch(() => []);
      if (files.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(files.length, 1, `one message in ${newDir}\n${output}`);
    const mail = await readFile(path.join(newDir, files[0]!), 'utf8');
    assert.match(mail, /^Return-Path: <bob@sender\.test>\nDelivered-To: alice@example\.test\n/);
    assert.match(mail, /\nSubject: test /);
    assert.equal((mail.match(/^Received: /gm) ?? []).length, 2, 'one Received: from the edge, one from the engine');
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  }
  assert.equal(child.exitCode, 0, output);
});
