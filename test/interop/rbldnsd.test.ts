/** DNSBL lookups and zone health checks against Debian's rbldnsd, the server many DNSBLs run. */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import { CachedDnsblLookup } from '../../src/dns/dnsbl-lookup.js';
import { ZoneHealthMonitor } from '../../src/dns/zone-health.js';
import { matchesRule } from '../../src/dns/dnsbl-answer.js';
import { formatDnsblMessage } from '../../src/policy/dnsbl/message.js';
import { startRbldnsd, type Rbldnsd } from './peers.js';

function requireRbldnsd(): void {
  const probe = spawnSync('rbldnsd', ['-h'], { encoding: 'utf8' });
  if (probe.error) {
    assert.fail(`rbldnsd is not installed (${probe.error.message}): install the Debian package "rbldnsd" (.ci/run does)`);
  }
}

const SOA = '$SOA 600 ns.bl.rbl.test hostmaster.bl.rbl.test 1 600 300 86400 30';

describe('interop: DNSBL against rbldnsd', () => {
  let rbl: Rbldnsd;
  let server: string;
  before(async () => {
    requireRbldnsd();
    rbl = await startRbldnsd({
      'bl.rbl.test': [
        SOA,
        ':127.0.0.2:Listed by the rbl test zone, see http://bl.rbl.test/?$',
        '127.0.0.2',
        '192.0.2.66',
        '192.0.2.67 :127.0.0.4:Dial-up range $',
        '192.0.2.68 :127.0.0.6',
        '198.51.100.0/24 :127.0.0.3:Whole /24 listed',
      ],
      // A zone gone bad: it lists the whole Internet, test points included.
      'dead.rbl.test': [':127.0.0.2:everything', '0.0.0.0/1', '128.0.0.0/1'],
      // A zone that lost its data: the 127.0.0.2 test point is missing.
      'empty.rbl.test': [SOA.replace(/bl\./g, 'empty.'), '192.0.2.66'],
    });
    server = `127.0.0.1:${rbl.port}`;
  });
  after(async () => {
    await rbl?.stop();
  });

  it('finds a listed address, its code and its TXT', async () => {
    const lookup = new CachedDnsblLookup({ client: new DnsClient({ servers: [server], timeoutMs: 1500 }), cacheSize: 100 });
    const a = await lookup.lookup('bl.rbl.test', '192.0.2.67');
    assert.equal(a.status, 'listed', rbl.output());
    assert.equal(a.queryName, '67.2.0.192.bl.rbl.test');
    assert.deepEqual(a.codes, ['127.0.0.4']);
    assert.equal(a.txt, 'Dial-up range 192.0.2.67');
    assert.equal(matchesRule(a.codes, { codes: ['127.0.0.2', '127.0.0.4'] }), '127.0.0.4');
    assert.equal(matchesRule(a.codes, { mask: '0.0.0.6' }), undefined);
    assert.equal(
      formatDnsblMessage('%0 rejected by %2: %3', { ip: '192.0.2.67', ruleName: 'RBL', provider: 'RBL test', ...(a.txt ? { txt: a.txt } : {}) }),
      '192.0.2.67 rejected by RBL test: Dial-up range 192.0.2.67',
    );
  });

  it('uses the zone\'s default code and TXT, CIDR entries, and mask matching', async () => {
    const lookup = new CachedDnsblLookup({ client: new DnsClient({ servers: [server], timeoutMs: 1500 }), cacheSize: 100 });
    const plain = await lookup.lookup('bl.rbl.test', '192.0.2.66');
    assert.deepEqual(plain.codes, ['127.0.0.2']);
    assert.equal(plain.txt, 'Listed by the rbl test zone, see http://bl.rbl.test/?192.0.2.66');
    const masked = await lookup.lookup('bl.rbl.test', '::ffff:192.0.2.68');
    assert.equal(matchesRule(masked.codes, { mask: '0.0.0.6' }), '127.0.0.6');
    const range = await lookup.lookup('bl.rbl.test', '198.51.100.200');
    assert.deepEqual(range.codes, ['127.0.0.3']);
    assert.equal(range.txt, 'Whole /24 listed');
  });

  it('an unlisted address is not listed, and its negative TTL (SOA minimum 30 s) is honoured', async () => {
    let now = 0;
    const lookup = new CachedDnsblLookup({
      client: new DnsClient({ servers: [server], timeoutMs: 1500 }),
      cacheSize: 100,
      clock: { now: () => now },
    });
    const a = await lookup.lookup('bl.rbl.test', '192.0.2.1');
    assert.equal(a.status, 'not-listed');
    now += 29_000;
    assert.equal((await lookup.lookup('bl.rbl.test', '192.0.2.1')).cached, true);
    now += 1_000;
    assert.equal((await lookup.lookup('bl.rbl.test', '192.0.2.1')).cached, false);
  });

  it('health checks: a good zone passes; a zone listing everything and an emptied zone fail', async () => {
    const changes: string[] = [];
    const monitor = new ZoneHealthMonitor({
      client: new DnsClient({ servers: [server], timeoutMs: 1500 }),
      zones: ['bl.rbl.test', 'dead.rbl.test', 'empty.rbl.test'],
      intervalSec: 0,
      onChange: (zone, state) => changes.push(`${zone}=${state}`),
    });
    await monitor.start();
    const s = monitor.status();
    assert.equal(s['bl.rbl.test']?.state, 'healthy', s['bl.rbl.test']?.reason);
    assert.equal(s['dead.rbl.test']?.state, 'unhealthy');
    assert.match(s['dead.rbl.test']?.reason ?? '', /127\.0\.0\.1 is listed/);
    assert.equal(s['empty.rbl.test']?.state, 'unhealthy');
    assert.match(s['empty.rbl.test']?.reason ?? '', /127\.0\.0\.2 is not listed/);
    assert.deepEqual(changes.sort(), ['bl.rbl.test=healthy', 'dead.rbl.test=unhealthy', 'empty.rbl.test=unhealthy']);
  });

  it('portcullis dnsbl (subprocess) reports the listing, the TXT and zone health from rbldnsd', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'portcullis-rbl-cli-'));
    try {
      const config = path.join(dir, 'portcullis.yaml');
      const rules = {
        hostname: 'mx.example.test',
        acceptedDomains: ['example.test'],
        listeners: [{ name: 'internet', listen: '127.0.0.1:2525' }],
        connectionFilter: {
          rules: [
            { name: 'Dead BL', zone: 'dead.rbl.test' },
            { name: 'RBL', zone: 'bl.rbl.test', provider: 'RBL test', match: { codes: ['127.0.0.4'] }, message: '%0 rejected by %2: %3' },
          ],
        },
        dns: { servers: [server], timeoutMs: 1500 },
      };
      await fs.writeFile(config, JSON.stringify(rules));
      const root = path.resolve(import.meta.dirname, '../..');
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'dnsbl', '192.0.2.67', '--config', config, '--json'],
          { cwd: root, timeout: 30_000 },
          (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
        );
      });
      const report = JSON.parse(stdout) as {
        rules: { rule: string; matches: boolean; enforced: boolean; txt?: string; zoneHealth: { state: string } }[];
        decision: { action: string; rule?: string; reply?: string };
      };
      const [dead, rbl] = report.rules;
      assert.equal(dead?.matches, true);
      assert.equal(dead?.enforced, false, 'a zone listing everything rejects nothing');
      assert.equal(dead?.zoneHealth.state, 'unhealthy');
      assert.equal(rbl?.txt, 'Dial-up range 192.0.2.67');
      assert.equal(rbl?.zoneHealth.state, 'healthy');
      assert.deepEqual(report.decision, {
        action: 'reject',
        rule: 'RBL',
        reply: '550 5.7.1 192.0.2.67 rejected by RBL test: Dial-up range 192.0.2.67',
      });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
