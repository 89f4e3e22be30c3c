/** `portcullis dnsbl` end to end: the real CLI as a subprocess, against a real loopback DNS server. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function portcullis(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'dnsbl', ...args],
      { cwd: ROOT, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const records = {
  // good.test: healthy, lists 192.0.2.66 (two codes, a TXT) and 192.0.2.67 (127.0.0.6)
  '2.0.0.127.good.test': { A: ['127.0.0.2'] },
  '66.2.0.192.good.test': { A: ['127.0.0.2', '127.0.0.4'], TXT: ['Spam source, see http://good.test/?192.0.2.66'] },
  '67.2.0.192.good.test': { A: ['127.0.0.6'] },
  // dead.test lists everything, test points included
  '2.0.0.127.dead.test': { A: ['127.0.0.2'] },
  '1.0.0.127.dead.test': { A: ['127.0.0.2'] },
  '66.2.0.192.dead.test': { A: ['127.0.0.2'] },
  // quiet.test never answers
  '2.0.0.127.quiet.test': { mode: 'blackhole' as const },
  '1.0.0.127.quiet.test': { mode: 'blackhole' as const },
  '66.2.0.192.quiet.test': { mode: 'blackhole' as const },
  '1.2.0.192.quiet.test': { mode: 'blackhole' as const },
  // 2001:db8::66 in good.test
  '6.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.good.test': { A: ['127.0.0.10'] },
};

describe('portcullis dnsbl (subprocess, real DNS on loopback)', () => {
  let dns: TestDnsServer;
  let dir: string;
  let config: string;
  before(async () => {
    dns = await startDnsServer({ records });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-dnsbl-cli-'));
    config = path.join(dir, 'portcullis.yaml');
    const rules = {
      hostname: 'mx.example.test',
      acceptedDomains: ['example.test'],
      listeners: [{ name: 'internet', listen: '127.0.0.1:2525' }],
      connectionFilter: {
        rules: [
          { name: 'Dead BL', zone: 'dead.test' },
          { name: 'Quiet BL', zone: 'quiet.test', onError: 'tempfail', reportOnly: true },
          { name: 'Mask BL', zone: 'good.test', match: { mask: '0.0.0.6' }, provider: 'Good' },
          {
            name: 'Good BL',
            zone: 'good.test',
            match: { codes: ['127.0.0.4'] },
            provider: 'Good Provider',
            message: 'The IP address %0 was rejected by block list provider %2: %3',
          },
        ],
      },
      dns: { servers: [dns.address], timeoutMs: 400, healthCheckIntervalSec: 0 },
    };
    await fs.writeFile(config, `${JSON.stringify(rules, null, 2)}\n`);
  });
  after(async () => {
    await dns.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('--json: every rule, its answers, why it matches, and the step 9 decision', async () => {
    const r = await portcullis(['192.0.2.66', '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      ip: string;
      rules: Record<string, unknown>[];
      decision: { action: string; rule?: string; reply?: string };
    };
    assert.equal(out.ip, '192.0.2.66');
    const [dead, quiet, mask, good] = out.rules as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    assert.equal(dead.matches, true);
    assert.equal(dead.enforced, false);
    assert.equal((dead.zoneHealth as { state: string }).state, 'unhealthy');
    assert.match(String(dead.why), /127\.0\.0\.2 matches, but zone dead\.test is unhealthy: not enforced/);
    assert.equal(quiet.status, 'timeout');
    assert.equal(quiet.reportOnly, true);
    assert.equal((quiet.zoneHealth as { state: string }).state, 'unreachable');
    assert.equal(mask.matches, false);
    assert.match(String(mask.why), /listed 127\.0\.0\.2, 127\.0\.0\.4 \(66\.2\.0\.192\.good\.test\) but no code matches mask 0\.0\.0\.6/);
    assert.equal(good.queryName, '66.2.0.192.good.test');
    assert.deepEqual(good.codes, ['127.0.0.2', '127.0.0.4']);
    assert.equal(good.txt, 'Spam source, see http://good.test/?192.0.2.66');
    assert.equal(good.matchedCode, '127.0.0.4');
    assert.equal(good.enforced, true);
    assert.equal((good.zoneHealth as { state: string }).state, 'healthy');
    const reply = '550 5.7.1 The IP address 192.0.2.66 was rejected by block list provider Good Provider: Spam source, see http://good.test/?192.0.2.66';
    assert.equal(good.reply, reply);
    assert.deepEqual(out.decision, { action: 'reject', rule: 'Good BL', reply });
  });

  it('text: the query, answers, TXT, match and health per rule', async () => {
    const r = await portcullis(['192.0.2.67', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /rule "Mask BL"\s+zone good\.test\s+provider Good/);
    assert.match(r.stdout, /query\s+67\.2\.0\.192\.good\.test A/);
    assert.match(r.stdout, /match\s+mask 0\.0\.0\.6: MATCHES — 127\.0\.0\.6 matches mask 0\.0\.0\.6/);
    assert.match(r.stdout, /zone health\s+UNHEALTHY \(test point 127\.0\.0\.1 is listed/);
    assert.match(r.stdout, /step 9 decision: reject by "Mask BL": 550 5\.7\.1 192\.0\.2\.67 has been blocked by Mask BL/);
  });

  it('IPv6 addresses are asked by their 32 nibbles', async () => {
    const r = await portcullis(['2001:db8::66', '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { rules: { rule: string; queryName: string; codes: string[] }[] };
    const good = out.rules.find((x) => x.rule === 'Good BL');
    assert.equal(good?.queryName, '6.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.good.test');
    assert.deepEqual(good?.codes, ['127.0.0.10']);
  });

  it('an address nobody lists: not listed, no decision', async () => {
    const r = await portcullis(['192.0.2.1', '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { rules: { status: string }[]; decision: { action: string } };
    assert.deepEqual(out.rules.map((x) => x.status), ['not-listed', 'timeout', 'not-listed', 'not-listed']);
    assert.deepEqual(out.decision, { action: 'accept' });
  });

  it('--health: each zone\'s RFC 5782 result', async () => {
    const r = await portcullis(['--health', '--config', config, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { zones: Record<string, { state: string; reason: string }> };
    assert.deepEqual(Object.keys(out.zones).sort(), ['dead.test', 'good.test', 'quiet.test']);
    assert.equal(out.zones['good.test']?.state, 'healthy');
    assert.equal(out.zones['dead.test']?.state, 'unhealthy');
    assert.equal(out.zones['quiet.test']?.state, 'unreachable', 'a zone that never answers is unreachable, not unhealthy');
    assert.match(out.zones['quiet.test']?.reason ?? '', /within 400 ms/);
    const text = await portcullis(['--health', '--config', config]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^good\.test\s+healthy\s+127\.0\.0\.2 listed/m);
    assert.match(text.stdout, /^dead\.test\s+UNHEALTHY\s+test point 127\.0\.0\.1 is listed/m);
    assert.match(text.stdout, /^quiet\.test\s+UNREACHABLE\s+test point 127\.0\.0\.2: .*within 400 ms/m);
  });

  it('usage errors exit 2', async () => {
    for (const args of [[], ['not-an-ip'], ['192.0.2.1', '192.0.2.2'], ['--health', '192.0.2.1'], ['192.0.2.1', '--bogus']]) {
      const r = await portcullis([...args, '--config', config]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /usage: portcullis dnsbl/);
    }
  });

  it('--help prints the usage and exits 0', async () => {
    const r = await portcullis(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /usage: portcullis dnsbl IP/);
  });

  it('a broken rule set exits 1 and names the file', async () => {
    const broken = path.join(dir, 'broken.yaml');
    await fs.writeFile(broken, 'hostname: mx.example.test\nacceptedDomains: [example.test]\nlisteners: []\n');
    const r = await portcullis(['192.0.2.1', '--config', broken]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broken\.yaml/);
    const missing = await portcullis(['192.0.2.1', '--config', path.join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.yaml/);
  });
});
