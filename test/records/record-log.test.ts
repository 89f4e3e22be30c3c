/** The record log on a real disk: rotation by size and day, retention, drops instead of waits, hashed local parts. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { hashLocalPart, pseudonymise, RecordLog } from '../../src/observability/record-log.js';
import { readRecords } from '../../src/cli/records/read-records.js';

class ManualClock {
  t = Date.parse('2026-12-01T10:00:00Z');
  now(): number {
    return this.t;
  }
}

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-recordlog-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function record(id: string, address = 'bob@example.com'): object {
  return {
    format: 1,
    id,
    start: '2026-12-01T10:00:00.000Z',
    end: '2026-12-01T10:00:01.000Z',
    listener: 'main',
    client: '192.0.2.1',
    rules: 'r',
    events: [{ kind: 'rcpt', address, verdict: { action: 'reject', code: 550, enhanced: '5.1.1', text: `<${address}>... Recipient not found`, step: 12, check: 'directory' }, trace: [] }],
    reportOnly: [],
    dns: [],
    zones: {},
    backend: [],
    inputs: {},
  };
}

function counter(): { counts: Record<string, number>; warnings: string[]; count: (o: string, n: number) => void; warn: (d: string) => void } {
  const counts: Record<string, number> = {};
  const warnings: string[] = [];
  return { counts, warnings, count: (o, n) => void (counts[o] = (counts[o] ?? 0) + n), warn: (d) => void warnings.push(d) };
}

describe('RecordLog', () => {
  it('rotates before a file passes maxBytes and at a new UTC day; the reader reads every file in order', async () => {
    const dir = tmp();
    const file = path.join(dir, 'records.jsonl');
    const clock = new ManualClock();
    const c = counter();
    const log = await RecordLog.open({ path: file, keepDays: 14, maxBytes: 1500, hashLocalParts: false }, { ...c, clock });
    for (let i = 0; i < 6; i++) {
      log.write(record(`s${i}`), []);
      await log.flush();
    }
    clock.t += 86_400_000;
    log.write(record('next-day'), []);
    await log.flush();
    const files = fs.readdirSync(dir).filter((n) => n.startsWith('records.jsonl'));
    assert.ok(files.length >= 3, files.join(', '));
    for (const f of files) assert.ok(fs.statSync(path.join(dir, f)).size <= 1500, `${f} within maxBytes`);
    const ids: string[] = [];
    for await (const r of readRecords(file)) ids.push(r.id);
    assert.deepEqual(ids, ['s0', 's1', 's2', 's3', 's4', 's5', 'next-day']);
    assert.equal(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 1, 'the new day starts a new file');
    assert.equal(c.counts.written, 7);
  });

  it('two processes on one log (workers) rotating in the same second keep every record', async () => {
    const dir = tmp();
    const file = path.join(dir, 'records.jsonl');
    // Each process writes six records with the same clock, so both rotate at the same second with the same counters.
    const script = (worker: string): string => `
      import { RecordLog } from ${JSON.stringify(new URL('../../src/observability/record-log.ts', import.meta.url).href)};
      const record = ${JSON.stringify(record('ID'))};
      const log = await RecordLog.open({ path: ${JSON.stringify(file)}, keepDays: 14, maxBytes: 1500, hashLocalParts: false },
        { count: () => {}, warn: (d) => { throw new Error(d); }, clock: { now: () => ${Date.parse('2026-12-01T10:00:00Z')} } });
      for (let i = 0; i < 6; i++) { log.write({ ...record, id: '${worker}' + i }, []); await log.flush(); }`;
    for (const worker of ['a', 'b']) execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(worker)], { stdio: 'pipe' });
    const ids: string[] = [];
    for await (const r of readRecords(file)) ids.push(r.id);
    assert.deepEqual(ids.sort(), ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'b0', 'b1', 'b2', 'b3', 'b4', 'b5']);
  });

  it('deletes rotated files older than keepDays', async () => {
    const dir = tmp();
    const file = path.join(dir, 'records.jsonl');
    const old = `${file}.20261101T000000Z-1`;
    fs.writeFileSync(old, '');
    const longAgo = new Date(Date.now() - 20 * 86_400_000);
    fs.utimesSync(old, longAgo, longAgo);
    fs.writeFileSync(`${file}.20261201T000000Z-1`, '');
    const c = counter();
    await RecordLog.open({ path: file, keepDays: 14, maxBytes: 1000, hashLocalParts: false }, c);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['records.jsonl.20261201T000000Z-1']);
  });

  it('an unwritable path drops and counts records, warns once per interval, and never throws to the writer', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'not-a-dir'), '');
    const c = counter();
    const log = await RecordLog.open({ path: path.join(dir, 'not-a-dir', 'records.jsonl'), keepDays: 1, maxBytes: 1000, hashLocalParts: false }, c);
    for (let i = 0; i < 3; i++) {
      log.write(record(`s${i}`), []);
      await log.flush();
    }
    assert.equal(c.counts.disk, 3);
    assert.equal(c.counts.written, undefined);
    assert.equal(c.warnings.filter((w) => /cannot write/.test(w)).length, 1);
  });

  it('a full queue drops at once instead of waiting for the disk', async () => {
    const dir = tmp();
    const c = counter();
    const log = await RecordLog.open({ path: path.join(dir, 'records.jsonl'), keepDays: 1, maxBytes: 1 << 20, hashLocalParts: false }, { ...c, maxQueued: 2 });
    for (let i = 0; i < 5; i++) log.write(record(`s${i}`), []);
    await log.flush();
    assert.deepEqual([c.counts.written, c.counts.full], [2, 3]);
  });

  it('hashLocalParts: no local part is left in the file, the same salt gives the same hash across restarts', async () => {
    const dir = tmp();
    const file = path.join(dir, 'records.jsonl');
    const c = counter();
    const cfg = { path: file, keepDays: 1, maxBytes: 1 << 20, hashLocalParts: true };
    const first = await RecordLog.open(cfg, c);
    first.write(record('a', 'bob@example.com'), ['bob@example.com']);
    await first.flush();
    const second = await RecordLog.open(cfg, c);
    second.write(record('b', 'bob@example.com'), ['bob@example.com']);
    await second.flush();
    const text = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /bob@/);
    const hashes = [...text.matchAll(/"address":"(h\.[0-9a-f]{16})@example\.com"/g)].map((m) => m[1]);
    assert.equal(hashes.length, 2);
    assert.equal(hashes[0], hashes[1]);
    assert.match(text, /"text":"<h\.[0-9a-f]{16}@example\.com>\.\.\. Recipient not found"/);
    assert.equal((fs.statSync(`${file}.salt`).mode & 0o777).toString(8), '600');
  });
});

describe('RecordLog, the file taken away', () => {
  it('a log removed by someone else (logrotate, an operator) is started afresh, not dropped for ever', async () => {
    const dir = tmp();
    const file = path.join(dir, 'records.jsonl');
    const c = counter();
    // Each record is about 500 bytes: every write after the first rotates.
    const log = await RecordLog.open({ path: file, keepDays: 14, maxBytes: 700, hashLocalParts: false }, c);
    log.write(record('before'), []);
    await log.flush();
    fs.rmSync(file);
    for (const id of ['after1', 'after2']) {
      log.write(record(id), []);
      await log.flush();
    }
    assert.equal(c.counts.disk, undefined);
    const ids: string[] = [];
    for await (const r of readRecords(file)) ids.push(r.id);
    assert.deepEqual(ids, ['after1', 'after2']);
  });
});

describe('pseudonymise: property', () => {
  const atext = fc.string({ unit: fc.constantFrom(...'abcXYZ019.!#$%&*+/=?^_`{|}~-é中'.split('')), minLength: 1, maxLength: 12 });
  const quoted = fc.string({ unit: fc.constantFrom(...'ab \\@,x"'.split('')), maxLength: 8 }).map((s) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`);
  const address = fc.tuple(fc.oneof(atext, quoted), fc.constantFrom('example.com', 'EXAMPLE.org')).map(([l, d]) => `${l}@${d}`);

  it('no given local part is left before its @ in any case; the record stays the same JSON otherwise', () => {
    const salt = Buffer.from('0123456789abcdef');
    fc.assert(
      fc.property(fc.uniqueArray(address, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 4 }), (addresses, upper) => {
        // The addresses as a session's record holds them: envelope fields, reply texts, some in another case.
        const shown = addresses.map((a, i) => (upper.includes(i) ? a.toUpperCase() : a));
        const json = JSON.stringify({ to: shown, text: shown.map((a) => `<${a}>... Recipient OK`).join(' '), other: 'postmaster@example.net' });
        const out = pseudonymise(json, addresses, salt);
        const parsed = JSON.parse(out) as { to: string[]; text: string; other: string };
        assert.equal(parsed.other, 'postmaster@example.net', 'an address not given is left alone');
        parsed.to.forEach((a, i) => {
          const local = addresses[i]!.slice(0, addresses[i]!.lastIndexOf('@'));
          assert.equal(a, `${hashLocalPart(local, salt)}${shown[i]!.slice(shown[i]!.lastIndexOf('@'))}`);
        });
        assert.equal(parsed.text, parsed.to.map((a) => `<${a}>... Recipient OK`).join(' '));
      }),
      { numRuns: 300 },
    );
  });
});
