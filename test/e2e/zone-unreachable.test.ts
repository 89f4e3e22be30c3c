/**
 * A DNSBL zone that cannot be reached is not a zone that answers wrongly. Through the real edge, a
 * real loopback DNS server (or none at all) and a real back end: an unreachable zone's fail-closed
 * rule answers 451 4.7.1 even though no lookup has worked since start-up, an unhealthy zone's rule
 * holds nothing back, and the metrics and logs name the three states.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { RulesSchema, type Rules } from '../../src/config/schema.js';
import { startEdge, type Edge } from '../../src/edge/edge.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { startBackend, type TestBackend } from '../support/backend-server.js';
import { refusedPort, startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { RawSmtpClient, edgeRefusal } from '../support/smtp-client.js';

interface Running {
  edge: Edge;
  metrics: Metrics;
  logs: Record<string, unknown>[];
}

async function start(backend: TestBackend, dnsServer: string, rules: Record<string, unknown>[]): Promise<Running> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const metrics = new Metrics();
  const input = {
    hostname: 'edge.test',
    acceptedDomains: ['example.com'],
    listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
    connectionFilter: { rules },
    dns: { servers: [dnsServer], timeoutMs: 300, healthCheckIntervalSec: 0 },
    backend: { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000 },
    log: { level: 'info' },
  };
  const edge = await startEdge({ load: async (): Promise<Rules> => RulesSchema.parse(structuredClone(input)) }, { metrics, logger: createLogger({ level: 'info', destination: sink }) });
  return { edge, metrics, logs };
}

async function rcpt(edge: Edge): Promise<string> {
  const c = await RawSmtpClient.connect(edge.addresses.main!.port);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
  const r = await c.cmd('RCPT TO:<bob@example.com>');
  c.quit();
  return r.line;
}

const series = (text: string, zone: string, state: string): string | undefined =>
  new RegExp(`^portcullis_dnsbl_zone_health\\{zone="${zone.replace(/\./g, '\\.')}",state="${state}"\\} (\\d+)$`, 'm').exec(text)?.[1];

describe('zone health: unreachable is a lookup failure, unhealthy is a zone not enforced', () => {
  let backend: TestBackend;
  let dns: TestDnsServer;
  before(async () => {
    backend = await startBackend();
    dns = await startDnsServer({
      records: {
        // off.test: every question is answered SERVFAIL, the health checks' included.
        '2.0.0.127.off.test': { mode: 'servfail' },
        '1.0.0.127.off.test': { mode: 'servfail' },
        // sick.test answers its positive test point with an error code (answers wrongly); the client,
        // 127.0.0.1, is its negative test point, whose lookup fails.
        '2.0.0.127.sick.test': { A: ['127.255.255.254'] },
        '1.0.0.127.sick.test': { mode: 'servfail' },
      },
    });
  });
  after(async () => {
    await backend.close();
    await dns.close();
  });

  it('a fail-closed rule whose zone answers SERVFAIL since start-up answers 451 4.7.1; metrics and log say unreachable', async () => {
    const r = await start(backend, dns.address, [{ name: 'Closed', zone: 'off.test', onError: 'tempfail' }]);
    try {
      assert.match(await rcpt(r.edge), edgeRefusal('451 4.7.1 Block list lookup failed (Closed), try again later'));
      const text = await r.metrics.render();
      assert.equal(series(text, 'off.test', 'unreachable'), '1');
      assert.equal(series(text, 'off.test', 'unhealthy'), '0');
      assert.equal(series(text, 'off.test', 'healthy'), '0');
      const line = r.logs.find((l) => l.msg === 'DNSBL zone health' && l.zone === 'off.test');
      assert.equal(line?.state, 'unreachable');
      assert.equal(line?.level, 'warn');
      assert.match(String(line?.reason), /SERVFAIL/);
      assert.deepEqual(backend.rcptTos, [], 'nothing reached the back end');
    } finally {
      await r.edge.close(200);
    }
  });

  it('with the resolver down (nothing listening), the fail-closed rule still answers 451 4.7.1', async () => {
    const r = await start(backend, `127.0.0.1:${await refusedPort()}`, [{ name: 'Closed', zone: 'off.test', onError: 'tempfail' }]);
    try {
      assert.match(await rcpt(r.edge), edgeRefusal('451 4.7.1 Block list lookup failed (Closed), try again later'));
      assert.equal(series(await r.metrics.render(), 'off.test', 'unreachable'), '1');
    } finally {
      await r.edge.close(200);
    }
  });

  it('a zone that answers wrongly is unhealthy: its fail-closed rule holds nothing back, and mail is relayed', async () => {
    const r = await start(backend, dns.address, [{ name: 'Sick', zone: 'sick.test', onError: 'tempfail' }]);
    try {
      assert.match(await rcpt(r.edge), /^250 /);
      assert.equal(series(await r.metrics.render(), 'sick.test', 'unhealthy'), '1');
      assert.equal(r.logs.find((l) => l.msg === 'DNSBL zone health' && l.zone === 'sick.test')?.state, 'unhealthy');
    } finally {
      await r.edge.close(200);
    }
  });
});
