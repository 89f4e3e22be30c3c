import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { deliverLocal, LocalDeliveryError, localDeliveryHeaders } from '../../src/transport/local-delivery.js';
import { headerBlockOf, readHeaderBlock } from '../../src/transport/header-block.js';
import { mailboxDir } from '../../src/transport/maildir.js';

let root: string;
let content: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'portcullis-maildir-'));
  content = path.join(root, 'message.eml');
  const body = 'Received: from edge\r\nFrom: Sender <sender@remote.test>\r\nTo: alice@example.com\r\nSubject: Caf\xe9 report\r\n\r\nline one\r\n..dotted\r\nlast line\r\n';
  await writeFile(content, Buffer.from(body, 'latin1'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Reads every message of a Maildir with Python's mailbox module: [Return-Path, Delivered-To, Subject, body]. */
function readWithPython(dir: string): string[][] {
  const script = [
    'import json, mailbox, sys',
    'box = mailbox.Maildir(sys.argv[1], factory=None, create=False)',
    'out = []',
    'for key in sorted(box.keys()):',
    '    m = box[key]',
    '    out.append([m["Return-Path"], m["Delivered-To"], m.get_subdir(), m.get_payload(decode=True).decode("latin-1")])',
    'print(json.dumps(out))',
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-c', script, dir], { encoding: 'utf8' })) as string[][];
}

test('a delivered message is readable by Python mailbox.Maildir, with Return-Path and Delivered-To', async () => {
  await deliverLocal(root, 'alice@example.com', content, localDeliveryHeaders('sender@remote.test', 'alice@example.com'));
  await deliverLocal(root, 'alice@example.com', content, localDeliveryHeaders('', 'alice@example.com'));
  const dir = mailboxDir(root, 'alice@example.com');
  const messages = readWithPython(dir);
  assert.equal(messages.length, 2);
  const returnPaths = messages.map((m) => m[0]).sort();
  assert.deepEqual(returnPaths, ['<>', '<sender@remote.test>']);
  for (const m of messages) {
    assert.equal(m[1], 'alice@example.com');
    assert.equal(m[2], 'new');
    assert.equal(m[3], 'line one\n..dotted\nlast line\n');
  }
  assert.deepEqual(await readdir(path.join(dir, 'tmp')), []);
  const names = await readdir(path.join(dir, 'new'));
  for (const name of names) {
    assert.match(name, /^\d+\.\d+_\d+[0-9a-f]{8}\.[^/:]+,S=\d+$/);
    const bytes = await readFile(path.join(dir, 'new', name));
    assert.equal(Number(/,S=(\d+)/.exec(name)![1]), bytes.length);
    assert.equal(bytes.includes('\r'), false, 'stored with LF line endings');
    assert.ok(bytes.includes(Buffer.from('Caf\xe9', 'latin1')), '8-bit bytes pass through unchanged');
  }
});

test('a mailbox over its quota refuses with 452 4.2.2 and leaves nothing behind', async () => {
  await deliverLocal(root, 'bob@example.com', content, localDeliveryHeaders('s@remote.test', 'bob@example.com'), { quotaBytes: 300 });
  await assert.rejects(
    deliverLocal(root, 'bob@example.com', content, localDeliveryHeaders('s@remote.test', 'bob@example.com'), { quotaBytes: 300 }),
    (err: unknown) => err instanceof LocalDeliveryError && err.reply.code === 452 && err.reply.enhanced === '4.2.2',
  );
  const dir = mailboxDir(root, 'bob@example.com');
  assert.equal(readWithPython(dir).length, 1);
  assert.deepEqual(await readdir(path.join(dir, 'tmp')), []);
});

test('an unreadable content file becomes 451 4.3.0, not a half-written message', async () => {
  await assert.rejects(
    deliverLocal(root, 'carol@example.com', path.join(root, 'missing.eml'), ''),
    (err: unknown) => err instanceof LocalDeliveryError && err.reply.code === 451 && err.reply.enhanced === '4.3.0',
  );
  const dir = mailboxDir(root, 'carol@example.com');
  assert.deepEqual(await readdir(path.join(dir, 'tmp')), []);
  assert.deepEqual(await readdir(path.join(dir, 'new')), []);
});

test('a mailbox name with a slash stays inside the store root', () => {
  const dir = mailboxDir('/store', '../evil/x@example.com');
  assert.equal(path.dirname(dir), '/store');
});

test('a delivery repeated after a crash finds the file it made, in new/ or moved to cur/ by a reader; without the crash flag it delivers again', async () => {
  const box = 'repeat@example.test';
  const dir = mailboxDir(root, box);
  await deliverLocal(root, box, content, localDeliveryHeaders('a@b.test', box), { fsync: false, queueId: 'Q0001-1' });
  await deliverLocal(root, box, content, localDeliveryHeaders('a@b.test', box), { fsync: false, queueId: 'Q0001-1', mayBeDelivered: true });
  assert.equal((await readdir(path.join(dir, 'new'))).length, 1, 'not delivered twice');

  const [name] = await readdir(path.join(dir, 'new'));
  await rename(path.join(dir, 'new', name!), path.join(dir, 'cur', `${name!}:2,S`));
  await deliverLocal(root, box, content, localDeliveryHeaders('a@b.test', box), { fsync: false, queueId: 'Q0001-1', mayBeDelivered: true });
  assert.equal((await readdir(path.join(dir, 'new'))).length, 0, 'the read copy in cur/ counts');

  // Another part of the same message (-10 begins like -1), or a repeat the engine has no reason to doubt, is delivered.
  await deliverLocal(root, box, content, localDeliveryHeaders('a@b.test', box), { fsync: false, queueId: 'Q0001-10', mayBeDelivered: true });
  await deliverLocal(root, box, content, localDeliveryHeaders('a@b.test', box), { fsync: false, queueId: 'Q0001-1' });
  assert.equal((await readdir(path.join(dir, 'new'))).length, 2);
});

test('property: content delivered from memory (fresh mail) makes the same Maildir file, and the same header block, as from its file', async () => {
  // Bytes a sender controls, CR and LF in any places, 8-bit included.
  const bytes = fc.array(fc.oneof(fc.constantFrom(13, 10), fc.integer({ min: 0, max: 255 })), { maxLength: 3000 }).map((a) => Buffer.from(a));
  let n = 0;
  await fc.assert(
    fc.asyncProperty(bytes, async (body) => {
      n++;
      const file = path.join(root, `prop-${n}.eml`);
      await writeFile(file, body);
      const fromFile = `prop-file-${n}@example.com`;
      const fromMemory = `prop-memory-${n}@example.com`;
      await deliverLocal(root, fromFile, file, localDeliveryHeaders('s@remote.test', 'x@example.com'), { fsync: false });
      await deliverLocal(root, fromMemory, body, localDeliveryHeaders('s@remote.test', 'x@example.com'), { fsync: false });
      const read = async (box: string): Promise<Buffer> => {
        const dir = path.join(mailboxDir(root, box), 'new');
        const [name] = await readdir(dir);
        return readFile(path.join(dir, name!));
      };
      assert.deepEqual(await read(fromMemory), await read(fromFile));
      assert.equal(headerBlockOf(body), await readHeaderBlock(file));
    }),
    { numRuns: 40 },
  );
});
