/**
 * Decision records end to end: a real `portcullis serve` with `records` on, a real DNS server and
 * real clients (Python's smtplib, swaks) from two loopback addresses, one of them on the block
 * list; then `replay`, `explain` and `dnsbl --stats` as subprocesses on what it wrote.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { startBackend, type TestBackend } from '../support/backend-server.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

const exec = promisify(execFile);
const ID = /\[([0-9a-v]{16})\]$/;

function rules(dns: string, backend: number, records: string, change: (r: Record<string, unknown>) => void = () => undefined): string {
  const r: Record<string, unknown> = {
    hostname: 'edge.test',
    acceptedDomains: ['example.com'],
    listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
    connectionFilter: { exceptions: ['postmaster@example.com'], rules: [{ name: 'Test BL', zone: 'bl.test', message: '%0 is listed by %1' }] },
    senderFilter: { blocked: ['spam@bad.example'] },
    recipientFilter: { rejectUnknown: true },
    directory: { addresses: ['bob@example.com', 'carol@example.com', 'postmaster@example.com'] },
    dns: { servers: [dns], timeoutMs: 1000, healthCheckIntervalSec: 0 },
    backend: { url: `smtp://127.0.0.1:${backend}`, timeoutMs: 5000 },
    records: { path: records },
    log: { level: 'info' },
    shutdownGraceMs: 500,
  };
  change(r);
  return JSON.stringify(r);
}

/** One smtplib session from `source`; prints each refused recipient's code and text, or the exception. */
async function smtplib(port: number, source: string, to: string[], headerFrom = 'alice@example.org', sender = 'alice@example.org'): Promise<Record<string, [number, string]>> {
  const script = [
    'import json, smtplib, sys',
    's = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="py.example", timeout=20, source_address=(sys.argv[2], 0))',
    'msg = "From: %s\\r\\nSubject: records\\r\\n\\r\\nhello\\r\\n" % sys.argv[3]',
    'try:',
    '    refused = {k: [v[0], v[1].decode()] for k, v in s.sendmail(sys.argv[4], sys.argv[5:], msg).items()}',
    'except smtplib.SMTPSenderRefused as e:',
    '    refused = {"MAIL": [e.smtp_code, e.smtp_error.decode()]}',
    'except smtplib.SMTPRecipientsRefused as e:',
    '    refused = {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}',
    'except smtplib.SMTPDataError as e:',
    '    refused = {"DATA": [e.smtp_code, e.smtp_error.decode()]}',
    'print(json.dumps(refused))',
    's.quit()',
  ].join('\n');
  const out = await exec('python3', ['-c', script, String(port), source, headerFrom, sender, ...to], { timeout: 20_000 });
  return JSON.parse(out.stdout) as Record<string, [number, string]>;
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function recordLines(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('decision records from a real serve, replayed, explained and counted', () => {
  let dns: TestDnsServer;
  let backend: TestBackend;
  let child: ChildProcess;
  let dir: string;
  let live: string;
  let records: string;
  /** The session IDs the clients read in their refusals. */
  const ids: Record<string, string> = {};

  before(async () => {
    dns = await startDnsServer({ records: { '2.0.0.127.bl.test': { A: ['127.0.0.2'], TXT: ['listed for testing'], ttl: 120 } } });
    backend = await startBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-records-'));
    records = path.join(dir, 'records', 'records.jsonl');
    live = path.join(dir, 'live.json');
    fs.writeFileSync(live, rules(dns.address, backend.port, records));
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', live], { stdio: ['ignore', 'pipe', 'pipe'] });
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('serve did not start')), 30_000);
      readline.createInterface({ input: child.stdout! }).on('line', (l) => {
        const o = JSON.parse(l) as { msg?: string; port?: number };
        if (o.msg === 'listening') {
          clearTimeout(t);
          resolve(Number(o.port));
        }
      });
    });
    // 1: a clean client, delivered.
    assert.deepEqual(await smtplib(port, '127.0.0.1', ['bob@example.com']), {});
    // 2: a listed client: bob refused by the DNSBL, postmaster (an exception) delivered.
    const listed = await smtplib(port, '127.0.0.2', ['bob@example.com', 'postmaster@example.com']);
    assert.deepEqual(Object.keys(listed), ['bob@example.com']);
    assert.match(listed['bob@example.com']?.[1] ?? '', /^5\.7\.1 127\.0\.0\.2 is listed by Test BL \[[0-9a-v]{16}\]$/);
    ids.listed = ID.exec(listed['bob@example.com']?.[1] ?? '')?.[1] ?? '';
    // 3: swaks with a blocked header From:, refused at the end of DATA.
    const swaks = await exec('swaks', ['--server', '127.0.0.1', '--port', String(port), '--to', 'carol@example.com', '--from', 'alice@example.org', '--header', 'From: spam@bad.example'], { timeout: 20_000 }).then(
      () => assert.fail('swaks should report the refusal'),
      (e: { stdout: string }) => e.stdout,
    );
    const line = /<\*\* {1,2}(550 5\.1\.0 Sender Denied \[[0-9a-v]{16}\])/.exec(swaks)?.[1] ?? '';
    assert.match(line, /^550 5\.1\.0 Sender Denied/, swaks);
    ids.header = ID.exec(line)?.[1] ?? '';
    // 4: an unknown recipient beside a known one.
    const unknown = await smtplib(port, '127.0.0.1', ['dave@example.com', 'carol@example.com']);
    assert.match(unknown['dave@example.com']?.[1] ?? '', /^5\.1\.1 .* \[[0-9a-v]{16}\]$/);
    // 5: a blocked envelope sender: refused at MAIL FROM, so the client names no recipient.
    const sender = await smtplib(port, '127.0.0.1', ['carol@example.com'], 'alice@example.org', 'spam@bad.example');
    assert.match(sender.MAIL?.[1] ?? '', /^5\.1\.0 Sender Denied \[[0-9a-v]{16}\]$/);
    ids.sender = ID.exec(sender.MAIL?.[1] ?? '')?.[1] ?? '';
    for (let i = 0; i < 100 && recordLines(records).length < 5; i++) await new Promise((r) => setTimeout(r, 100));
  });

  after(async () => {
    child?.kill('SIGTERM');
    await backend?.close();
    await dns?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes one record per session, keyed by the ID in its replies, with the DNS answer, its TTL and time', () => {
    const lines = recordLines(records);
    assert.equal(lines.length, 5);
    const listed = lines.find((l) => l.id === ids.listed) as { client: string; dns: { zone: string; at: number; answer: { status: string; ttlSec: number } }[]; events: { kind: string }[] };
    assert.equal(listed.client, '127.0.0.2');
    assert.deepEqual(listed.dns.map((d) => [d.zone, d.answer.status, d.answer.ttlSec]), [['bl.test', 'listed', 120]]);
    assert.ok(Math.abs(listed.dns[0]!.at - Date.now()) < 120_000);
    assert.deepEqual(listed.events.map((e) => e.kind), ['connect', 'helo', 'mail', 'rcpt', 'rcpt', 'data']);
    assert.ok(lines.some((l) => l.id === ids.header));
  });

  it('replaying the live rule set on its own records changes nothing, from the records and with live DNS', async () => {
    for (const extra of [[], ['--live-dns']]) {
      const r = await cli('replay', '--rules', live, '--records', records, '--json', ...extra);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout) as { sessions: number; recipients: number; groups: unknown[]; changedSessions: Record<string, number>; changedRecipients: Record<string, number>; changedSenders: Record<string, number> };
      assert.deepEqual([report.sessions, report.recipients], [5, 6], extra.join(' '));
      assert.deepEqual(report.groups, []);
      assert.deepEqual(Object.values(report.changedSessions), [0, 0]);
      assert.deepEqual(Object.values(report.changedRecipients), [0, 0]);
      assert.deepEqual(Object.values(report.changedSenders), [0, 0]);
    }
  });

  it('limits and greylisting are state, not rules: a candidate that adds them replays with no change', async () => {
    const candidate = path.join(dir, 'with-limits.json');
    const liveRules = JSON.parse(fs.readFileSync(live, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(candidate, JSON.stringify({ ...liveRules, greylisting: { delaySec: 300 }, rateLimits: { client: { recipientsPerMinute: 1 } } }));
    const r = await cli('replay', '--rules', candidate, '--records', records, '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { groups: unknown[]; changedRecipients: Record<string, number> };
    assert.deepEqual(report.groups, []);
    assert.deepEqual(Object.values(report.changedRecipients), [0, 0]);
  });

  it('a candidate without the exception and the header block lists exactly the changed recipients, by deciding rule', async () => {
    const candidate = path.join(dir, 'candidate.json');
    fs.writeFileSync(
      candidate,
      rules(dns.address, backend.port, records, (r) => {
        r.connectionFilter = { exceptions: [], rules: [{ name: 'Test BL', zone: 'bl.test', message: '%0 is listed by %1' }, { name: 'New BL', zone: 'new.test' }] };
        r.senderFilter = { blocked: [] };
      }),
    );
    const r = await cli('replay', '--rules', candidate, '--records', records, '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { groups: { direction: string; step: number; rule?: string; sessions: number; recipients: number; senders: number; examples: { id: string; address: string }[] }[]; unrecorded: Record<string, number> };
    assert.deepEqual(
      report.groups.map((g) => [g.direction, g.step, g.rule, g.sessions, g.recipients, g.senders, g.examples.map((e) => [e.id, e.address])]),
      [
        ['accepted → refused', 9, 'Test BL', 1, 1, 0, [[ids.listed, 'postmaster@example.com']]],
        ['refused → accepted', 15, 'spam@bad.example', 1, 1, 0, [[ids.header, 'carol@example.com']]],
        // The client named no recipient after its refused MAIL FROM: counted as a sender, not guessed at.
        ['refused → accepted', 7, 'spam@bad.example', 1, 0, 1, [[ids.sender, 'spam@bad.example']]],
      ],
    );
    // The new list was never asked live: the replay says so rather than inventing an answer.
    assert.equal(report.unrecorded['new.test'], 5);
    const text = await cli('replay', '--rules', candidate, '--records', records);
    assert.match(text.stdout, /accepted → refused: 1 session\(s\), 1 recipient\(s\)\n {2}step {2}9 {2}DNSBL rules \(Test BL\): 1 session\(s\), 1 recipient\(s\)/);
  });

  it('explain ID prints the trace as check does, and the verified changes that flip the refusal', async () => {
    const r = await cli('explain', ids.listed ?? '', '--records', records, '--config', live);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DNS: bl\.test about 127\.0\.0\.2: listed 127\.0\.0\.2 \(TTL 120 s/);
    assert.match(r.stdout, /RCPT TO:<bob@example\.com>\n {2}step {2}8 {2}relay protection: .*\n {2}step {2}9 {2}DNSBL rules: Test BL: 127\.0\.0\.2 matches any/);
    assert.match(r.stdout, /-> 550 5\.7\.1 127\.0\.0\.2 is listed by Test BL\n/);
    assert.match(r.stdout, /RCPT TO:<bob@example\.com>: 550 5\.7\.1 at step 9 DNSBL rules \(Test BL\)\n {4}- add bob@example\.com to connectionFilter\.exceptions\n {4}- remove the DNSBL rule 'Test BL'.*\n {4}- add 127\.0\.0\.2 to connectionFilter\.accept/);
    const missing = await cli('explain', '0000000000000000', '--records', records, '--config', live);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no session 0000000000000000/);
  });

  it('dnsbl --stats: hits, unique hits, and hits whose other signals disagree', async () => {
    const r = await cli('dnsbl', '--stats', '--records', records, '--config', live, '--json');
    assert.equal(r.code, 0, r.stderr);
    const stats = JSON.parse(r.stdout) as { sessions: number; lists: { rule: string; hits: number; unique: number; disagree: number; disagreeShare: number }[] };
    assert.equal(stats.sessions, 5);
    // The listed client's other recipient was an exception the back end took: the signals disagree.
    assert.deepEqual(stats.lists.map((l) => [l.rule, l.hits, l.unique, l.disagree, l.disagreeShare]), [['Test BL', 1, 1, 1, 1]]);
  });

  it('a corrupt line is skipped and counted; a record from a newer version is refused with a clear message', async () => {
    const copy = path.join(dir, 'copy', 'records.jsonl');
    fs.mkdirSync(path.dirname(copy));
    fs.writeFileSync(copy, `${fs.readFileSync(records, 'utf8')}{"format":1,"id":"trunc\n`);
    const r = await cli('replay', '--rules', live, '--records', copy, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(((o) => [o.sessions, o.corrupt])(JSON.parse(r.stdout) as { sessions: number; corrupt: number }), [5, 1]);
    fs.appendFileSync(copy, '{"format":2,"id":"future"}\n');
    const newer = await cli('explain', ids.listed ?? '', '--records', copy, '--config', live);
    assert.equal(newer.code, 1);
    assert.match(newer.stderr, /records\.jsonl:7: written by a newer Portcullis \(record format 2; this version reads format 1\)/);
  });
});
