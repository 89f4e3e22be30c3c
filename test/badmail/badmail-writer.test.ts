import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadmailWriteError, BadmailWriter, badmailDir } from '../../src/badmail/badmail-writer.js';
import { RulesSchema } from '../../src/config/schema.js';
import { StorageError } from '../../src/storage/durable-write.js';

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

const record = {
  id: 's1',
  time: '2026-11-23T10:00:00.000Z',
  source: 'archive' as const,
  sender: 'a@b.example',
  recipients: ['c@example.com'],
  reason: 'step 7 sender filter (envelope sender): *@b.example',
  listener: 'main',
};

describe('Badmail', () => {
  it('writes message and record under one directory rename; a failing source leaves nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'badmail-'));
    try {
      const w = new BadmailWriter(dir);
      const entry = await w.write(chunks('Subject: x\r\n\r\n', 'body\r\n'), record);
      assert.equal(path.basename(entry), '2026-11-23T100000000Z-s1');
      assert.equal(fs.readFileSync(path.join(entry, 'message.eml'), 'utf8'), 'Subject: x\r\n\r\nbody\r\n');
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(entry, 'envelope.json'), 'utf8')), record);
      async function* failing(): AsyncGenerator<Buffer> {
        yield Buffer.from('partial');
        throw new Error('client went away');
      }
      await assert.rejects(w.write(failing(), { ...record, id: 's2' }), /client went away/);
      assert.deepEqual(fs.readdirSync(dir), [path.basename(entry)], 'no partial entry, no temporary left behind');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // The edge answers this 452 4.3.1 so the client retries: test/e2e/faults.test.ts, 'Badmail write failure'.
  it('a directory it cannot write raises a storage error that carries no SMTP reply', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'badmail-')), 'not-a-dir');
    fs.writeFileSync(file, '');
    try {
      const err = await new BadmailWriter(path.join(file, 'badmail')).write(chunks('x\r\n'), record).catch((e: unknown) => e);
      assert.ok(err instanceof BadmailWriteError);
      assert.ok(err instanceof StorageError);
      assert.equal('reply' in err, false);
      assert.match(err.message, /^badmail write failed: /);
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });

  it('is one directory for edge and engine: `badmail`, else <transport.dataDir>/badmail', () => {
    const base = { hostname: 'mx.example.test', acceptedDomains: ['example.test'], listeners: [{ name: 'm', listen: '127.0.0.1:25' }] };
    assert.equal(badmailDir(RulesSchema.parse({ ...base, transport: { dataDir: '/var/lib/p' } }), '/etc'), '/var/lib/p/badmail');
    assert.equal(badmailDir(RulesSchema.parse({ ...base, badmail: 'bm' }), '/etc'), '/etc/bm');
  });
});
