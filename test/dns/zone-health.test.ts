import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DnsClient } from '../../src/dns/client.js';
import { ZoneHealthMonitor, checkZone } from '../../src/dns/zone-health.js';
import { refusedPort, startDnsServer, type TestDnsServer } from '../support/dns-server.js';

const healthyZone = { '2.0.0.127.good.test': { A: ['127.0.0.2'], TXT: ['test point'] } };
const deadZone = {
  // A zone that has died and lists the whole Internet, test points included.
  '2.0.0.127.dead.test': { A: ['127.0.0.2'] },
  '1.0.0.127.dead.test': { A: ['127.0.0.2'] },
};
const silentZone = {
  '2.0.0.127.silent.test': { mode: 'blackhole' as const },
  '1.0.0.127.silent.test': { mode: 'blackhole' as const },
};
const quotaZone = {
  '2.0.0.127.quota.test': { A: ['127.255.255.254'] },
};
const brokenZone = {
  '2.0.0.127.broken.test': { mode: 'servfail' as const },
  '1.0.0.127.broken.test': { mode: 'servfail' as const },
};

describe('zone health (RFC 5782 test points) against a real loopback DNS server', () => {
  let server: TestDnsServer;
  let client: DnsClient;
  before(async () => {
    server = await startDnsServer({ records: { ...healthyZone, ...deadZone, ...silentZone, ...quotaZone, ...brokenZone } });
    client = new DnsClient({ servers: [server.address], timeoutMs: 300 });
  });
  after(() => server.close());

  it('a healthy zone lists 127.0.0.2 and not 127.0.0.1', async () => {
    const r = await checkZone(client, 'good.test');
    assert.equal(r.state, 'healthy', r.reason);
  });

  it('a dead zone that lists everything is unhealthy', async () => {
    const r = await checkZone(client, 'dead.test');
    assert.equal(r.state, 'unhealthy');
    assert.match(r.reason, /127\.0\.0\.1 is listed/);
  });

  it('a zone that does not answer is unreachable (not unhealthy), within the deadline', async () => {
    // A longer time-out than the other tests: asked one after the other, the two test points would
    // take 3000 ms, so the bound proves they are asked in parallel and still leaves 1000 ms of slack.
    const patient = new DnsClient({ servers: [server.address], timeoutMs: 1500 });
    const t0 = performance.now();
    const r = await checkZone(patient, 'silent.test');
    const elapsed = performance.now() - t0;
    assert.equal(r.state, 'unreachable');
    assert.match(r.reason, /within 1500 ms/);
    assert.ok(elapsed >= 1500 - 50, `not cut short: elapsed ${elapsed} ms`);
    assert.ok(elapsed < 1500 + 1000, `both test points are asked in parallel: elapsed ${elapsed} ms`);
  });

  it('a zone the resolver answers SERVFAIL for is unreachable', async () => {
    const r = await checkZone(client, 'broken.test');
    assert.equal(r.state, 'unreachable');
    assert.match(r.reason, /SERVFAIL/);
  });

  it('a resolver that is down makes every zone unreachable', async () => {
    const down = new DnsClient({ servers: [`127.0.0.1:${await refusedPort()}`], timeoutMs: 300 });
    assert.equal((await checkZone(down, 'good.test')).state, 'unreachable');
  });

  it('an empty zone (127.0.0.2 not listed) is unhealthy', async () => {
    const r = await checkZone(client, 'empty.test');
    assert.equal(r.state, 'unhealthy');
    assert.match(r.reason, /127\.0\.0\.2 is not listed/);
  });

  it('a zone answering error codes (e.g. refused public resolver) is unhealthy', async () => {
    const r = await checkZone(client, 'quota.test');
    assert.equal(r.state, 'unhealthy');
    assert.match(r.reason, /127\.255\.255\.254/);
  });

  it('start() checks every zone before it resolves; status and onChange report it', async () => {
    const changes: [string, string][] = [];
    const monitor = new ZoneHealthMonitor({
      client,
      zones: ['good.test', 'dead.test', 'broken.test'],
      intervalSec: 0,
      clock: { now: () => 42 },
      onChange: (zone, state) => changes.push([zone, state]),
    });
    assert.equal(monitor.isEnforced('dead.test'), true, 'not checked yet: enforced');
    assert.equal(monitor.status()['dead.test']?.state, undefined);
    await monitor.start();
    assert.equal(monitor.isEnforced('good.test'), true);
    assert.equal(monitor.isEnforced('dead.test'), false);
    assert.equal(monitor.isEnforced('broken.test'), true, 'an unreachable zone stays enforced: its rule\'s onError decides');
    assert.equal(monitor.isEnforced('DEAD.test.'), false, 'zone names compare case-insensitively');
    const status = monitor.status();
    assert.equal(status['good.test']?.checkedAt, 42);
    assert.match(status['dead.test']?.reason ?? '', /lists everything/);
    assert.deepEqual(changes.sort(), [
      ['broken.test', 'unreachable'],
      ['dead.test', 'unhealthy'],
      ['good.test', 'healthy'],
    ]);
    monitor.stop();
  });

  it('a zone that recovers becomes healthy again at the next round', async () => {
    const local = await startDnsServer({ records: deadZone });
    try {
      const changes: [string, string, string][] = [];
      const monitor = new ZoneHealthMonitor({
        client: new DnsClient({ servers: [local.address], timeoutMs: 300 }),
        zones: ['dead.test'],
        intervalSec: 1,
        onChange: (zone, state, reason) => changes.push([zone, state, reason]),
      });
      await monitor.start();
      assert.equal(monitor.isEnforced('dead.test'), false);
      local.setRecords({ '2.0.0.127.dead.test': { A: ['127.0.0.2'] } });
      for (let i = 0; i < 40 && !monitor.isEnforced('dead.test'); i++) await sleep(100);
      monitor.stop();
      assert.equal(monitor.isEnforced('dead.test'), true, 'the periodic check saw the zone recover');
      assert.deepEqual(changes.map((c) => c[1]), ['unhealthy', 'healthy']);
    } finally {
      await local.close();
    }
  });

  it('setZones() checks added zones at once and forgets removed ones', async () => {
    const monitor = new ZoneHealthMonitor({ client, zones: ['good.test'], intervalSec: 0 });
    await monitor.start();
    await monitor.setZones(['dead.test']);
    assert.deepEqual(Object.keys(monitor.status()), ['dead.test']);
    assert.equal(monitor.isEnforced('dead.test'), false);
  });

  it('health checks bypass any cache: each round asks the wire', async () => {
    const monitor = new ZoneHealthMonitor({ client, zones: ['good.test'], intervalSec: 0 });
    const asked = () => server.queries.filter((q) => q === '2.0.0.127.good.test').length;
    const before = asked();
    await monitor.start();
    await monitor.checkAll();
    assert.equal(asked() - before, 2);
  });
});
