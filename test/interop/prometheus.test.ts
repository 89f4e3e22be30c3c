/**
 * The operator's view, proven live: a real Prometheus scrapes two `portcullis serve` processes (an
 * edge in front of a scripted back end, and an edge with the bundled transport engine delivering to
 * a Maildir, to smtp-sink smart hosts and to a dead one), after traffic that reaches every panel of
 * grafana/dashboard.json: every refusal step, DNSBL hits, misses, errors and time-outs, an unhealthy
 * and an unreachable zone, each relay outcome, a health check, engine deliveries, a DSN and a retry.
 * Then every PromQL expression of the dashboard must parse and return at least one series through
 * Prometheus's HTTP API, every variable must offer values, and prometheus/alerts.yml must load and
 * evaluate, the zone alerts pending for the zones that are down. The table of what each query
 * returned is printed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { startBackend, closedPort, type TestBackend } from '../support/backend-server.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { sample } from '../support/metrics-text.js';
import { RawSmtpClient, sendMail, edgeRefusal } from '../support/smtp-client.js';
import {
  freePort,
  launch,
  pause,
  startServe,
  startSmtpSink,
  swaksSession,
  tempDir,
  waitForPorts,
  writeRules,
  type EdgeProcess,
  type Running,
  type SmtpSink,
} from './peers.js';
import { startPrometheus, type Prometheus } from './prometheus.js';

interface Target {
  expr: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: Array<{ name: string; definition?: string }> };
}
interface AlertRule {
  name: string;
  query: string;
  health: string;
  lastError?: string;
  state?: string;
  alerts?: Array<{ labels: Record<string, string>; state: string }>;
}

const MSG = 'From: <alice@sender.test>\r\nSubject: prometheus interop\r\n\r\nbody\r\n';
/** Grafana's variables, as the dashboard would expand them with "All" chosen. */
const GRAFANA_VARIABLES: Record<string, string> = { $__rate_interval: '1m', $instance: '.*', $listener: '.*' };
const V2_LOCAL = Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from([0x20, 0x00, 0x00, 0x00])]);

let dir: string;
let dns: TestDnsServer;
let backend: TestBackend;
let sink: SmtpSink;
let refusing: SmtpSink;
let edge: EdgeProcess;
let engine: Running & { port: number; metricsPort: number; dataDir: string; lbPort: number };
let prom: Prometheus;

before(async () => {
  dir = await tempDir('portcullis-prom-interop-');
  dns = await startDnsServer({
    records: {
      // bl.test: healthy (RFC 5782 test points right) and listing 192.0.2.66.
      '2.0.0.127.bl.test': { A: ['127.0.0.2'] },
      '66.2.0.192.bl.test': { A: ['127.0.0.2'] },
      // sick.test lists nothing, not even its test point: unhealthy. off.test's test points fail: unreachable.
      '2.0.0.127.off.test': { mode: 'servfail' },
      '1.0.0.127.off.test': { mode: 'servfail' },
      // Client 192.0.2.10's off.test lookup fails (error), 192.0.2.11's is never answered (timeout).
      '10.2.0.192.off.test': { mode: 'servfail' },
      '11.2.0.192.off.test': { mode: 'blackhole' },
      // wl.test: a healthy allowlist the engine's scoring lists weigh -1; it lists 192.0.2.66 too.
      '2.0.0.127.wl.test': { A: ['127.0.0.2'] },
      '66.2.0.192.wl.test': { A: ['127.0.10.2'] },
    },
  });
  backend = await startBackend();
  sink = await startSmtpSink();
  refusing = await startSmtpSink({ args: ['-f', 'RCPT'] });

  const edgeMetrics = await freePort();
  const file = await writeRules(dir, {
    hostname: 'edge.prom.test',
    acceptedDomains: ['example.test'],
    listeners: [
      { name: 'edge', listen: '127.0.0.1:0', proxyProtocol: { from: ['127.0.0.1'] }, ipRestrictions: { default: 'grant', except: ['203.0.113.0/24'] } },
    ],
    connectionFilter: {
      accept: ['198.51.100.10'],
      deny: ['198.51.100.66'],
      exceptions: ['postmaster@example.test'],
      rules: [
        { name: 'Main BL', zone: 'bl.test', match: 'any' },
        { name: 'Sick BL', zone: 'sick.test', match: 'any' },
        { name: 'Off BL', zone: 'off.test', match: 'any', onError: 'accept' },
      ],
    },
    senderFilter: { blocked: ['spammer@bad.test', '*@blocked.test'], action: 'reject' },
    recipientFilter: { blocked: ['blocked@example.test'], rejectUnknown: true },
    directory: { addresses: ['user@example.test', 'postmaster@example.test', 'blocked@example.test'] },
    harvest: { delayAfter: 1, delayMs: 10, disconnectAfter: 3 },
    // Only clients from 100.64.0.0/10 meet the rate limit and greylisting: the traffic above is exempt.
    rateLimits: { exempt: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '127.0.0.0/8'], client: { connectionsPerMinute: 1 } },
    greylisting: { exemptClients: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '127.0.0.0/8'] },
    dns: { servers: [dns.address], timeoutMs: 300, healthCheckIntervalSec: 0 },
    backend: { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 3000 },
    badmail: path.join(dir, 'badmail'),
    metrics: { listen: `127.0.0.1:${edgeMetrics}` },
    log: { level: 'info' },
  }, 'edge.yaml');
  const ports = { smtp: await freePort(), lb: await freePort(), metrics: await freePort(), engine: await freePort(), admin: await freePort() };
  const dataDir = path.join(dir, 'engine-data');
  const engineFile = await writeRules(dir, {
    hostname: 'mx.prom.test',
    acceptedDomains: ['example.test'],
    // senderAuth (stamp only) on mx: every message through it reaches the sender authentication panel.
    listeners: [
      { name: 'mx', listen: `127.0.0.1:${ports.smtp}`, relayFrom: ['127.0.0.0/8'], heloChecks: { notOurs: true }, senderAuth: {} },
      { name: 'mx-lb', listen: `127.0.0.1:${ports.lb}`, proxyProtocol: { from: ['127.0.0.1'] } },
    ],
    // Step 9 as a score on this process (the edge above runs first-match rules): the scoring panels' data.
    connectionFilter: {
      scoring: { threshold: 2, lists: [{ name: 'Prom BL', zone: 'bl.test', weight: 2 }, { name: 'Prom WL', zone: 'wl.test', weight: -1 }] },
    },
    directory: { addresses: ['alice@example.test', 'postmaster@example.test'] },
    // A candidate rule set judged beside the live one (the shadow panel), blocking one more sender.
    shadow: {
      rules: await writeRules(dir, {
        hostname: 'mx.prom.test',
        acceptedDomains: ['example.test'],
        listeners: [
          { name: 'mx', listen: `127.0.0.1:${ports.smtp}`, relayFrom: ['127.0.0.0/8'] },
          { name: 'mx-lb', listen: `127.0.0.1:${ports.lb}`, proxyProtocol: { from: ['127.0.0.1'] } },
        ],
        senderFilter: { blocked: ['*@sender.test'] },
      }, 'candidate.yaml'),
    },
    dns: { servers: [dns.address], timeoutMs: 300, healthCheckIntervalSec: 0 },
    metrics: { listen: `127.0.0.1:${ports.metrics}` },
    log: { level: 'info' },
    transport: {
      listen: `127.0.0.1:${ports.engine}`,
      admin: { listen: `127.0.0.1:${ports.admin}` },
      dataDir,
      fsync: false,
      remote: { timeoutMs: 3000 },
      connectors: [
        { name: 'sink', addressSpaces: ['sink.test'], smartHost: `127.0.0.1:${sink.port}` },
        { name: 'refusing', addressSpaces: ['bounce.test'], smartHost: `127.0.0.1:${refusing.port}` },
        { name: 'dead', addressSpaces: ['down.test'], smartHost: `127.0.0.1:${await closedPort()}` },
      ],
    },
  }, 'engine.yaml');
  const root = process.cwd();
  const [e, bundled] = await Promise.all([
    startServe(file, { withMetrics: true }),
    (async () => {
      const p = launch(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'serve', '--config', engineFile], { cwd: root });
      await waitForPorts(p, 'tcp', 5, 30_000);
      return { ...p, port: ports.smtp, metricsPort: ports.metrics, dataDir, lbPort: ports.lb };
    })(),
  ]);
  edge = e;
  engine = bundled;
  prom = await startPrometheus([`127.0.0.1:${edge.metricsPort}`, `127.0.0.1:${engine.metricsPort}`], ['prometheus/alerts.yml']);
});

after(async () => {
  await prom?.stop();
  await edge?.stop();
  await engine?.stop();
  await Promise.all([sink?.stop(), refusing?.stop(), backend?.close(), dns?.close()]);
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A client behind the balancer: the PROXY v1 header names it, then the greeting and EHLO. */
async function from(client: string, greeting = 220): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(edge.port);
  c.send(`PROXY TCP4 ${client} 127.0.0.1 40000 25`);
  assert.equal((await c.read()).code, greeting, `greeting for ${client}`);
  if (greeting === 220) assert.equal((await c.cmd('EHLO client.prom.test')).code, 250);
  return c;
}

async function metricsOf(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** Drives the edge through every step and every relay outcome, asserting what each client saw. */
async function edgeTraffic(): Promise<void> {
  // Relayed, by an independent client: bl.test misses, off.test fails (error).
  const clean = await swaksSession({
    port: edge.port, proxy: { version: 1, source: '192.0.2.10' }, helo: 'client.prom.test',
    from: 'alice@sender.test', to: ['user@example.test'], headerFrom: 'alice@sender.test', subject: 'clean',
  });
  assert.equal(clean.dataEnd?.code, 250, JSON.stringify(clean));

  // off.test never answers for this client: a time-out, onError accept, relayed.
  let c = await from('192.0.2.11');
  assert.equal((await sendMail(c, 'bob@sender.test', ['user@example.test'], MSG)).end?.code, 250);
  c.quit();

  // Listed by bl.test: refused at step 9, the exception recipient (step 10) still relayed; a second session is answered from the cache.
  c = await from('192.0.2.66');
  const listed = await sendMail(c, 'erin@sender.test', ['user@example.test', 'postmaster@example.test'], MSG);
  assert.deepEqual(listed.rcpts.map((r) => r.code), [550, 250]);
  assert.equal(listed.end?.code, 250);
  c.quit();
  c = await from('192.0.2.66');
  assert.equal((await c.cmd('MAIL FROM:<erin@sender.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<user@example.test>')).code, 550);
  c.quit();

  // Step 2: IP restriction; step 5: accept list (relayed); step 6: deny list (dropped).
  (await from('203.0.113.5', 554)).quit();
  c = await from('198.51.100.10');
  assert.equal((await sendMail(c, 'frank@sender.test', ['user@example.test'], MSG)).end?.code, 250);
  c.quit();
  c = await from('198.51.100.66');
  assert.equal((await c.cmd('MAIL FROM:<dave@sender.test>')).code, 550);
  c.quit();

  // Step 7 (blocked sender), relay protection, step 11 (blocked recipient), step 12 and harvest protection, step 15.
  c = await from('192.0.2.12');
  assert.equal((await c.cmd('MAIL FROM:<spammer@bad.test>')).code, 550);
  assert.equal((await c.cmd('MAIL FROM:<gina@sender.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<someone@elsewhere.test>')).code, 550);
  assert.equal((await c.cmd('RCPT TO:<blocked@example.test>')).code, 550);
  // The blocked recipient's 550 5.1.1 counts as the first invalid one: the second and third are delayed, the fourth disconnected.
  for (const n of [1, 2]) assert.equal((await c.cmd(`RCPT TO:<nobody${n}@example.test>`)).line.slice(0, 9), '550 5.1.1');
  assert.equal((await c.cmd('RCPT TO:<nobody3@example.test>')).code, 421, 'harvest protection disconnects');
  c.quit();
  c = await from('192.0.2.12');
  const blockedFrom = await sendMail(c, 'ivan@sender.test', ['user@example.test'], 'From: <boss@blocked.test>\r\n\r\nbody\r\n');
  assert.equal(blockedFrom.end?.code, 550);
  c.quit();

  // The back end's own 4xx (tempfail) and 5xx (rejected), passed on.
  backend.behaviour = { mail: { code: 451, text: 'Try later' } };
  c = await from('192.0.2.13');
  assert.equal((await c.cmd('MAIL FROM:<hank@sender.test>')).line, '451 4.3.0 Try later');
  backend.behaviour = { dataEnd: { code: 554, text: 'Content refused' } };
  assert.equal((await sendMail(c, 'hank@sender.test', ['user@example.test'], MSG)).end?.line, '554 5.6.0 Content refused');
  // The back end dying mid-DATA: failed, 451 4.7.0 to the client.
  backend.behaviour = { dieAfterBytes: 50_000, discardData: true };
  const big = `Subject: big\r\n\r\n${('x'.repeat(998) + '\r\n').repeat(200)}`;
  assert.equal((await sendMail(c, 'hank@sender.test', ['user@example.test'], big)).end?.line.slice(0, 9), '451 4.7.0');
  backend.behaviour = {};
  c.quit();

  // The client leaving mid-DATA once the back end is inside DATA: aborted.
  const dataStarted = backend.dataStarted;
  c = await from('192.0.2.14');
  assert.equal((await c.cmd('MAIL FROM:<jo@sender.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<user@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write(`Subject: half\r\n\r\n${'y'.repeat(100_000)}\r\n`);
  for (let i = 0; i < 500 && backend.dataStarted === dataStarted; i++) await pause(10);
  c.kill();

  // Greylisting (step 12.2) defers a first-time triplet; the same client's next connection in the minute is rate limited (step 2.1).
  c = await from('100.64.0.7');
  assert.equal((await c.cmd('MAIL FROM:<kim@sender.test>')).code, 250);
  assert.match((await c.cmd('RCPT TO:<user@example.test>')).line, edgeRefusal('451 4.7.1 Greylisted, please try again later'));
  c.quit();
  (await from('100.64.0.7', 421)).quit();

  // A balancer's health check (PROXY v2 LOCAL).
  const check = await RawSmtpClient.connect(edge.port);
  check.write(V2_LOCAL);
  assert.equal((await check.read()).code, 220);
  assert.equal((await check.cmd('QUIT')).code, 221);

  const outcomes = ['delivered', 'tempfail', 'rejected', 'failed', 'aborted'];
  for (let i = 0; i < 100; i++) {
    const text = await metricsOf(edge.metricsPort!);
    if (outcomes.every((o) => sample(text, 'portcullis_relay_total', { outcome: o }) > 0)) return;
    await pause(50);
  }
  assert.fail(`not every relay outcome was counted:\n${(await metricsOf(edge.metricsPort!)).split('\n').filter((l) => l.startsWith('portcullis_relay_total')).join('\n')}`);
}

/** One message to the bundled engine for a local mailbox, a smart host, a refusing one and a dead one. */
async function engineTraffic(): Promise<void> {
  const sent = await swaksSession({
    port: engine.port, helo: 'client.prom.test', from: 'alice@example.test',
    to: ['alice@example.test', 'x@sink.test', 'y@bounce.test', 'z@down.test'], headerFrom: 'alice@example.test', subject: 'engine',
  });
  assert.equal(sent.dataEnd?.code, 250, JSON.stringify(sent));
  const want: Array<[string, Record<string, string>]> = [
    ['portcullis_transport_deliveries_total', { outcome: 'delivered' }],
    ['portcullis_transport_deliveries_total', { outcome: 'transferred' }],
    ['portcullis_transport_deliveries_total', { outcome: 'failed' }],
    ['portcullis_transport_deliveries_total', { outcome: 'deferred' }],
    ['portcullis_transport_dsns_total', { action: 'failed' }],
    ['portcullis_transport_queue_oldest_message_age_seconds', {}],
    // example.test publishes no SPF record and the message is unsigned: stamped, not refused.
    ['portcullis_auth_results_total', { mechanism: 'spf', result: 'none', action: 'accept' }],
    ['portcullis_auth_results_total', { mechanism: 'dkim', result: 'none', action: 'accept' }],
  ];
  let text = '';
  for (let i = 0; i < 300; i++) {
    text = await metricsOf(engine.metricsPort);
    if (want.every(([m, l]) => sample(text, m, l) > 0)) break;
    await pause(50);
  }
  for (const [m, l] of want) assert.ok(sample(text, m, l) > 0, `${m} ${JSON.stringify(l)}:\n${engine.output().slice(-3000)}`);
  // The original and the DSN for y@bounce.test reached alice's Maildir.
  const maildir = path.join(engine.dataDir, 'mailboxes', 'alice@example.test', 'new');
  let files: string[] = [];
  for (let i = 0; i < 100 && files.length < 2; i++) {
    files = await fs.readdir(maildir).catch(() => []);
    if (files.length < 2) await pause(50);
  }
  assert.equal(files.length, 2, 'the message and the non-delivery report are in the Maildir');
}

/** A client both scoring lists name, through the engine process's scoring listener: +2 -1, under the threshold. */
async function scoringTraffic(): Promise<void> {
  const c = await RawSmtpClient.connect(engine.lbPort);
  c.send('PROXY TCP4 192.0.2.66 127.0.0.1 40000 25');
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.prom.test')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<kim@sender.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250, 'a score of 1 is under the threshold of 2');
  assert.equal((await c.cmd('QUIT')).code, 221);
}

function expressions(d: Dashboard): Array<{ panel: string; expr: string }> {
  const all = d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  return all.map(({ panel, expr }) => ({
    panel,
    expr: Object.entries(GRAFANA_VARIABLES).reduce((e, [name, value]) => e.split(name).join(value), expr),
  }));
}

test('every dashboard query answers with data, every variable offers values, the alerting rules evaluate', { timeout: 120_000 }, async () => {
  await Promise.all([edgeTraffic(), engineTraffic(), scoringTraffic()]);
  await prom.waitForScrapes(2);

  // What the traffic made happen, as Prometheus stored it.
  const labelled = async (expr: string, ...labels: string[]): Promise<string[]> =>
    (await prom.query(expr)).map((s) => labels.map((l) => s.metric[l]).join(' ')).sort();
  assert.deepEqual(await labelled('sum by (outcome) (portcullis_relay_total) > 0', 'outcome'), ['aborted', 'delivered', 'failed', 'rejected', 'tempfail']);
  const lookups = await labelled('sum by (zone, outcome) (portcullis_dnsbl_lookups_total) > 0', 'zone', 'outcome');
  for (const l of ['bl.test listed', 'bl.test not-listed', 'off.test error', 'off.test timeout']) assert.ok(lookups.includes(l), `${l} in ${lookups.join(', ')}`);
  assert.deepEqual(await labelled('max by (zone, state) (portcullis_dnsbl_zone_health) == 1', 'zone', 'state'), ['bl.test healthy', 'off.test unreachable', 'sick.test unhealthy', 'wl.test healthy']);
  const steps = await labelled('sum by (step) (portcullis_verdicts_total{action!="relay"}) > 0', 'step');
  for (const step of ['2', '2.1', '5', '6', '7', '8', '9', '10', '11', '12', '12.2', '13', '15']) assert.ok(steps.includes(step), `step ${step} decided nothing: ${steps.join(', ')}`);

  const d = JSON.parse(await fs.readFile('grafana/dashboard.json', 'utf8')) as Dashboard;
  const table: string[] = ['series | panel | query'];
  const empty: string[] = [];
  for (const { panel, expr } of expressions(d)) {
    const result = await prom.query(expr).catch((err: Error) => assert.fail(`panel '${panel}': ${err.message}`));
    table.push(`${result.length} | ${panel} | ${expr}`);
    if (result.length === 0) empty.push(`${panel}: ${expr}`);
  }
  for (const v of d.templating.list.filter((x) => x.definition !== undefined)) {
    const m = /^label_values\((.*), (\w+)\)$/.exec(v.definition ?? '');
    assert.ok(m, `variable ${v.name}: ${v.definition}`);
    const selector = Object.entries(GRAFANA_VARIABLES).reduce((e, [name, value]) => e.split(name).join(value), m[1] as string);
    const values = await prom.api<string[]>(`/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(selector)}`);
    table.push(`${values.length} | variable ${v.name} (${values.join(', ')}) | ${v.definition}`);
    assert.ok(values.length > 0, `variable ${v.name} offers nothing`);
  }
  assert.ok((await prom.api<string[]>('/api/v1/label/instance/values?match[]=portcullis_sessions_total')).length === 2, 'both processes scraped');

  // The shipped alerting rules: loaded, evaluated without error, and each expression run by hand too.
  const rules = parse(await fs.readFile('prometheus/alerts.yml', 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  const loaded = (await prom.api<{ groups: Array<{ rules: AlertRule[] }> }>('/api/v1/rules')).groups.flatMap((g) => g.rules);
  for (const r of rules.groups.flatMap((g) => g.rules)) {
    const result = await prom.query(r.expr).catch((err: Error) => assert.fail(`alert ${r.alert}: ${err.message}`));
    const rule = loaded.find((l) => l.name === r.alert);
    table.push(`${result.length} | alert ${r.alert} (${rule?.state ?? 'not loaded'}) | ${r.expr.replace(/\s+/g, ' ').trim()}`);
    assert.equal(rule?.health, 'ok', `alert ${r.alert} was not evaluated: ${rule?.lastError}`);
  }
  const zoneAlert = (name: string): string[] => (loaded.find((l) => l.name === name)?.alerts ?? []).map((a) => `${a.labels.zone} ${a.state}`);
  // Both for 10 minutes: pending now, with the zone that is down and no other.
  assert.deepEqual(zoneAlert('PortcullisDnsblZoneUnhealthy'), ['sick.test pending']);
  assert.deepEqual(zoneAlert('PortcullisDnsblZoneUnreachable'), ['off.test pending']);

  console.log(table.join('\n'));
  assert.deepEqual(empty, [], 'panels whose query returned no series after the traffic');
});
