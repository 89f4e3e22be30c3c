import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RulesSchema } from '../../src/config/schema.js';
import { openDnsbl } from '../../src/dns/dnsbl-runtime.js';
import { systemClock } from '../../src/runtime/clock.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';

describe('openDnsbl from the rules', () => {
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer({
      records: {
        '2.0.0.127.bl.test': { A: ['127.0.0.2'] },
        '1.0.0.127.dead.test': { A: ['127.0.0.2'] },
        '2.0.0.127.dead.test': { A: ['127.0.0.2'] },
        '5.2.0.192.bl.test': { A: ['127.0.0.3'] },
      },
    });
  });
  after(() => dns.close());

  it('wires lookup, health and the hooks to the configured servers and zones', async () => {
    const rules = RulesSchema.parse({
      hostname: 'mx.example.test',
      acceptedDomains: ['example.test'],
      listeners: [{ name: 'internet', listen: '127.0.0.1:25' }],
      connectionFilter: { rules: [{ name: 'A', zone: 'bl.test' }, { name: 'B', zone: 'dead.test' }, { name: 'C', zone: 'bl.test' }] },
      dns: { servers: [dns.address], timeoutMs: 500, cacheSize: 5, healthCheckIntervalSec: 0 },
    });
    const lookups: string[] = [];
    const changes: string[] = [];
    const svc = await openDnsbl(rules, {
      clock: systemClock,
      onLookup: (zone, outcome, _s, cached) => lookups.push(`${zone} ${outcome} ${cached}`),
      onZoneChange: (zone, state) => changes.push(`${zone} ${state}`),
    });
    svc.close();
    assert.deepEqual(Object.keys(svc.health.status()).sort(), ['bl.test', 'dead.test']);
    assert.deepEqual(changes.sort(), ['bl.test healthy', 'dead.test unhealthy'], 'the start-up round ran before openDnsbl resolved');
    assert.deepEqual(svc.describeHealth().sort(), [
      'bl.test: healthy (127.0.0.2 listed (127.0.0.2), 127.0.0.1 not listed)',
      'dead.test: UNHEALTHY (test point 127.0.0.1 is listed (127.0.0.2): the zone lists everything)',
    ]);
    assert.equal((await svc.lookup.lookup('bl.test', '192.0.2.5')).status, 'listed');
    assert.equal((await svc.lookup.lookup('bl.test', '192.0.2.5')).cached, true);
    assert.deepEqual(lookups, ['bl.test listed false', 'bl.test listed true']);
  });
});
