/**
 * `portcullis dnsbl` and `portcullis check` on a scoring rule set: the real CLI as a subprocess, a
 * real loopback DNS server. Each list's contribution and the total are shown, and the decision.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { reportAddress } from '../../src/cli/dnsbl/report.js';
import { RulesSchema } from '../../src/config/schema.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('portcullis dnsbl and check in scoring mode (subprocess, real DNS on loopback)', () => {
  let dns: TestDnsServer;
  let dir: string;
  let config: string;
  before(async () => {
    dns = await startDnsServer({
      records: {
        '2.0.0.127.bl.test': { A: ['127.0.0.2'] },
        '2.0.0.127.zen.test': { A: ['127.0.0.2'] },
        '2.0.0.127.wl.test': { A: ['127.0.0.2'] },
        '66.2.0.192.bl.test': { A: ['127.0.0.2'] },
        '66.2.0.192.zen.test': { A: ['127.0.0.4', '127.0.0.10'], TXT: ['in the PBL'] },
        '77.2.0.192.bl.test': { A: ['127.0.0.2'] },
        '77.2.0.192.wl.test': { A: ['127.0.10.2'] },
      },
    });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-scoring-cli-'));
    config = path.join(dir, 'portcullis.yaml');
    const rules = {
      hostname: 'mx.example.test',
      acceptedDomains: ['example.test'],
      listeners: [{ name: 'internet', listen: '127.0.0.1:2525' }],
      connectionFilter: {
        scoring: {
          threshold: 5,
          allowThreshold: -3,
          lists: [
            { name: 'Block', zone: 'bl.test', weight: 2 },
            { name: 'Zen', zone: 'zen.test', weights: { '127.0.0.4': 4, '127.0.0.10': 1 }, provider: 'Zen', message: '%0 refused by %2: %3' },
            { name: 'Welcome', zone: 'wl.test', weight: -6 },
          ],
        },
      },
      directory: { addresses: ['alice@example.test'] },
      dns: { servers: [dns.address], timeoutMs: 1000, healthCheckIntervalSec: 0 },
    };
    await fs.writeFile(config, `${JSON.stringify(rules, null, 2)}\n`);
  });
  after(async () => {
    await dns.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('dnsbl --json: each list\'s answer and points, the total, and the refusal of the top contributor', async () => {
    const r = await portcullis(['dnsbl', '192.0.2.66', '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      score: { total: number; threshold: number; allowThreshold: number; lists: { list: string; points: number; codes: string[]; weighs: string; why: string }[] };
      decision: Record<string, string>;
    };
    assert.deepEqual(out.score.lists.map((l) => [l.list, l.points]), [['Block', 2], ['Zen', 5], ['Welcome', 0]]);
    assert.equal(out.score.total, 7);
    assert.equal(out.score.threshold, 5);
    assert.equal(out.score.allowThreshold, -3);
    assert.equal(out.score.lists[1]?.weighs, 'weights 127.0.0.4 +4, 127.0.0.10 +1');
    assert.deepEqual(out.decision, { action: 'reject', rule: 'Zen', reply: '550 5.7.1 192.0.2.66 refused by Zen: in the PBL' });
  });

  it('dnsbl (text): contributions, the sum, and an allowlisted decision', async () => {
    const r = await portcullis(['dnsbl', '192.0.2.77', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /list "Welcome"\s+zone wl\.test/);
    assert.match(r.stdout, /contributes\s+-6 — 127\.0\.10\.2 matches any \(77\.2\.0\.192\.wl\.test\): -6/);
    assert.match(r.stdout, /score -4 = \+2 Block, 0 Zen, -6 Welcome \(threshold 5, allowThreshold -3\)/);
    assert.match(r.stdout, /step 9 decision: allowlisted by "Welcome": the remaining connection checks are skipped/);
  });

  it('check --json: the trace shows each list\'s contribution and the total; the recipient gets the score\'s reply', async () => {
    const r = await portcullis(['check', '--config', config, '--json', '--ip', '192.0.2.66', '--from', 'a@example.org', '--to', 'alice@example.test']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { rcpt: { code: number; reply: string; step: number; check: string; rule: string }[]; trace: { step: number; check: string; outcome: string }[] };
    assert.deepEqual(
      [out.rcpt[0]?.code, out.rcpt[0]?.step, out.rcpt[0]?.check, out.rcpt[0]?.rule, out.rcpt[0]?.reply],
      [550, 9, 'DNSBL score', 'Zen', '550 5.7.1 192.0.2.66 refused by Zen: in the PBL'],
    );
    const lines = out.trace.filter((t) => t.check === 'DNSBL score').map((t) => t.outcome);
    assert.ok(lines.includes('Block: 127.0.0.2 matches any (66.2.0.192.bl.test): +2'), lines.join(' | '));
    assert.ok(lines.includes('Zen: 127.0.0.4 +4, 127.0.0.10 +1 (66.2.0.192.zen.test): +5'), lines.join(' | '));
    assert.ok(lines.includes('Welcome: not listed (66.2.0.192.wl.test): 0'), lines.join(' | '));
    assert.ok(lines.includes('total +7 (threshold 5, allowThreshold -3): refused, reply of Zen, the top contributor'), lines.join(' | '));
  });

  it('an allow rule in first-match mode: reported with allow, no reply, and an allowlisted decision', async () => {
    const rules = RulesSchema.parse({
      hostname: 'mx.example.test',
      acceptedDomains: ['example.test'],
      listeners: [{ name: 'internet', listen: '127.0.0.1:2525' }],
      connectionFilter: { rules: [{ name: 'Welcome', zone: 'wl.test', allow: true }, { name: 'Block', zone: 'bl.test' }] },
      dns: { servers: [dns.address], timeoutMs: 1000 },
    });
    const welcome = await reportAddress(rules, '192.0.2.77');
    assert.deepEqual(
      welcome.rules.map((r) => [r.rule, r.allow, r.matches, r.enforced, r.reply]),
      [['Welcome', true, true, true, undefined], ['Block', false, true, true, '550 5.7.1 192.0.2.77 has been blocked by Block']],
    );
    assert.deepEqual(welcome.decision, { action: 'allowlisted', rule: 'Welcome' });
    const blocked = await reportAddress(rules, '192.0.2.66');
    assert.deepEqual(blocked.decision, { action: 'reject', rule: 'Block', reply: '550 5.7.1 192.0.2.66 has been blocked by Block' });
  });
});
