import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkZones, reportAddress } from '../../../src/cli/dnsbl/report.js';
import { RulesSchema } from '../../../src/config/schema.js';
import { describeMatch } from '../../../src/dns/dnsbl-answer.js';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.js';

describe('dnsbl address report against a real loopback DNS server', () => {
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer({
      records: {
        '2.0.0.127.bl.test': { A: ['127.0.0.2'] },
        '9.2.0.192.bl.test': { A: ['127.0.0.2', '127.255.255.254'], TXT: ['why'] },
        '2.0.0.127.off.test': { mode: 'servfail' },
        '1.0.0.127.off.test': { mode: 'servfail' },
        '9.2.0.192.off.test': { mode: 'servfail' },
        // An empty zone (unhealthy) whose lookup of the client fails too.
        '9.2.0.192.empty.test': { mode: 'servfail' },
      },
    });
  });
  after(() => dns.close());

  const rules = () =>
    RulesSchema.parse({
      hostname: 'mx.example.test',
      acceptedDomains: ['example.test'],
      listeners: [{ name: 'internet', listen: '127.0.0.1:25' }],
      connectionFilter: {
        rules: [
          { name: 'Trial', zone: 'bl.test', reportOnly: true },
          { name: 'Empty', zone: 'empty.test', onError: 'tempfail' },
          { name: 'Closed', zone: 'off.test', onError: 'tempfail' },
          { name: 'Main', zone: 'bl.test' },
        ],
      },
      dns: { servers: [dns.address], timeoutMs: 500 },
    });

  it('judges every rule and gives the engine\'s decision: a failing lookup fails closed on an unreachable zone, not on an unhealthy one', async () => {
    const r = await reportAddress(rules(), '::ffff:192.0.2.9');
    assert.equal(r.ip, '192.0.2.9');
    const [trial, empty, closed, main] = r.rules;
    assert.equal(trial?.matches, true);
    assert.match(trial?.why ?? '', /report only/);
    assert.equal(trial?.reply, '550 5.7.1 192.0.2.9 has been blocked by Trial');
    assert.deepEqual(trial?.errorCodes, ['127.255.255.254']);
    assert.equal(trial?.txt, 'why');
    assert.equal(empty?.status, 'error');
    assert.equal(empty?.zoneHealth.state, 'unhealthy');
    assert.match(empty?.why ?? '', /SERVFAIL.*not a listing, and zone empty\.test is unhealthy: not enforced/);
    assert.equal(closed?.status, 'error');
    assert.equal(closed?.zoneHealth.state, 'unreachable');
    assert.match(closed?.why ?? '', /SERVFAIL.*rule fails closed/);
    assert.equal(main?.matches, true);
    // Closed comes before Main: an unreachable zone is a lookup failure, and onError: tempfail decides.
    assert.deepEqual(r.decision, { action: 'tempfail', rule: 'Closed', reply: '451 4.7.1 Block list lookup failed (Closed), try again later' });
  });

  it('checkZones reports each zone once', async () => {
    const zones = await checkZones(rules());
    assert.deepEqual(Object.keys(zones).sort(), ['bl.test', 'empty.test', 'off.test']);
    assert.equal(zones['bl.test']?.state, 'healthy');
    assert.equal(zones['empty.test']?.state, 'unhealthy');
    assert.equal(zones['off.test']?.state, 'unreachable');
  });

  it('describes match modes as the docs write them', () => {
    assert.equal(describeMatch('any'), 'any');
    assert.equal(describeMatch({ mask: '0.0.0.6' }), 'mask 0.0.0.6');
    assert.equal(describeMatch({ maskAny: '0.0.0.6' }), 'maskAny 0.0.0.6');
    assert.equal(describeMatch({ codes: ['127.0.0.2', '127.0.0.4'] }), 'codes 127.0.0.2, 127.0.0.4');
  });
});
