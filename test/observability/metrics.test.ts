import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics, isAddressLike, REDACTED_LABEL } from '../../src/observability/metrics.js';
import { GroupMetrics } from '../../src/observability/group-metrics.js';
import { verdict } from '../../src/policy/verdict.js';
import { sample } from '../support/metrics-text.js';

/** Every label value in a Prometheus text exposition. */
function labelValues(text: string): string[] {
  return [...text.matchAll(/\w+="([^"]*)"/g)].map((m) => m[1] as string);
}

test('counters show up in the rendered text after calls', async () => {
  const m = new Metrics();
  m.sessionOpened('public');
  m.sessionOpened('public');
  m.sessionClosed('public');
  m.reply(250);
  m.reply(250);
  m.reply(550);
  m.reply(451);
  m.reply(354);
  m.verdict(verdict('reject', 550, '5.7.1', 'blocked', { step: 9, check: 'dnsbl' }, 'Spamhaus ZEN'));
  m.verdict({ ...verdict('reject', 550, '5.7.1', 'blocked', { step: 9, check: 'dnsbl' }, 'Trial list'), reportOnly: true });
  m.dnsblLookup('zen.example', 'listed', 0.012, false);
  m.dnsblLookup('zen.example', 'listed', 0.00001, true);
  m.dnsblLookup('zen.example', 'timeout', 1.5, false);
  m.zoneHealth('zen.example', 'healthy');
  m.zoneHealth('dead.example', 'unhealthy');
  m.zoneHealth('down.example', 'unhealthy');
  m.zoneHealth('down.example', 'unreachable');
  m.relay('delivered', 0.2);
  m.relay('tempfail', 5);
  m.badmail();
  m.harvest('delayed');
  m.harvest();
  const text = await m.render();
  assert.match(text, /^portcullis_sessions_total\{listener="public"\} 2$/m);
  assert.match(text, /^portcullis_open_connections\{listener="public"\} 1$/m);
  assert.match(text, /^portcullis_replies_total\{class="2xx"\} 2$/m);
  assert.match(text, /^portcullis_replies_total\{class="3xx"\} 1$/m);
  assert.match(text, /^portcullis_replies_total\{class="4xx"\} 1$/m);
  assert.match(text, /^portcullis_replies_total\{class="5xx"\} 1$/m);
  assert.match(text, /^portcullis_verdicts_total\{step="9",check="dnsbl",rule="Spamhaus ZEN",action="reject",report_only="false"\} 1$/m);
  assert.match(text, /^portcullis_verdicts_total\{step="9",check="dnsbl",rule="Trial list",action="reject",report_only="true"\} 1$/m);
  assert.match(text, /^portcullis_dnsbl_lookups_total\{zone="zen.example",outcome="listed",cached="false"\} 1$/m);
  assert.match(text, /^portcullis_dnsbl_lookups_total\{zone="zen.example",outcome="listed",cached="true"\} 1$/m);
  assert.match(text, /^portcullis_dnsbl_lookups_total\{zone="zen.example",outcome="timeout",cached="false"\} 1$/m);
  assert.match(text, /^portcullis_dnsbl_lookup_seconds_count\{zone="zen.example",cached="false"\} 2$/m);
  assert.match(text, /^portcullis_dnsbl_zone_health\{zone="zen.example",state="healthy"\} 1$/m);
  assert.match(text, /^portcullis_dnsbl_zone_health\{zone="zen.example",state="unhealthy"\} 0$/m);
  assert.match(text, /^portcullis_dnsbl_zone_health\{zone="dead.example",state="healthy"\} 0$/m);
  assert.match(text, /^portcullis_dnsbl_zone_health\{zone="dead.example",state="unhealthy"\} 1$/m);
  assert.match(text, /^portcullis_dnsbl_zone_health\{zone="down.example",state="unhealthy"\} 0$/m);
  assert.match(text, /^portcullis_dnsbl_zone_health\{zone="down.example",state="unreachable"\} 1$/m);
  assert.match(text, /^portcullis_relay_total\{outcome="delivered"\} 1$/m);
  assert.match(text, /^portcullis_relay_seconds_bucket\{le="5",outcome="tempfail"\} 1$/m);
  assert.match(text, /^portcullis_badmail_total 1$/m);
  assert.match(text, /^portcullis_harvest_total\{event="delayed"\} 1$/m);
  assert.match(text, /^portcullis_harvest_total\{event="disconnected"\} 1$/m);
});

test('two instances keep separate counts (no global registry)', async () => {
  const a = new Metrics();
  const b = new Metrics();
  a.badmail();
  a.badmail();
  b.badmail();
  assert.match(await a.render(), /^portcullis_badmail_total 2$/m);
  assert.match(await b.render(), /^portcullis_badmail_total 1$/m);
});

test('labels never contain an address or a mailbox, whatever the callers pass', async () => {
  const m = new Metrics();
  const leaks = ['192.0.2.7', '198.51.100.0/24', '192.0.2.0 255.255.255.0', '2001:db8::7', '::ffff:192.0.2.7', 'ted@contoso.com', '*@contoso.com'];
  for (const leak of leaks) {
    m.verdict(verdict('drop', 550, '5.7.1', `${leak} is on the deny list`, { step: 6, check: 'global deny list' }, leak));
    m.verdict(verdict('reject', 550, '5.1.0', 'Sender Denied', { step: 7, check: 'sender filter' }, leak));
    m.sessionOpened(leak);
    m.dnsblLookup(leak, 'error', 0.1, false);
    m.zoneHealth(leak, 'unhealthy');
  }
  const text = await m.render();
  for (const value of labelValues(text)) assert.equal(isAddressLike(value), false, `label value '${value}' leaks an address`);
  for (const leak of leaks) assert.equal(text.includes(leak), false, `${leak} appears in the metrics`);
  assert.match(text, new RegExp(`rule="${REDACTED_LABEL}"`));
});

test('configured names pass through the label guard unchanged', () => {
  for (const name of ['Spamhaus ZEN', 'zen.spamhaus.org', 'b.barracudacentral.org', 'public', 'global deny list', 'harvest']) {
    assert.equal(isAddressLike(name), false, name);
  }
});

test('process metrics are opt-in and carry the prefix', async () => {
  const m = new Metrics({ processMetrics: true });
  const names = m.names();
  assert.ok(names.includes('portcullis_process_resident_memory_bytes'));
  assert.equal(new Metrics().names().some((n) => n.includes('process_')), false);
});

test('a worker group shows a zone state, back pressure or a lost state store as soon as one worker has it', async () => {
  const [a, b] = [new Metrics(), new Metrics()];
  a.zoneHealth('bl.test', 'healthy');
  b.zoneHealth('bl.test', 'unhealthy');
  a.stateStore(true);
  b.stateStore(false);
  a.backPressure(false);
  b.backPressure(true);
  const workers = new Map([
    [1, await a.registry.getMetricsAsJSON()],
    [2, await b.registry.getMetricsAsJSON()],
  ]);
  const text = await new GroupMetrics().render(new Metrics().registry, workers);
  assert.equal(sample(text, 'portcullis_dnsbl_zone_health', { zone: 'bl.test', state: 'unhealthy' }), 1, 'what an alert on == 1 looks for');
  assert.equal(sample(text, 'portcullis_dnsbl_zone_health', { zone: 'bl.test', state: 'healthy' }), 1);
  assert.equal(sample(text, 'portcullis_state_store_up', {}), 0);
  assert.equal(sample(text, 'portcullis_back_pressure', {}), 1);
});
