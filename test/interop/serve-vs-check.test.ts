/**
 * `portcullis serve` in front of Postfix's smtp-sink, with rbldnsd as the DNSBL, driven by swaks and
 * Python's smtplib: for each input, the codes a real client sees at each stage are the codes
 * `portcullis check --json` predicts for the same input, and smtp-sink receives exactly the messages
 * and recipients the prediction relays. Client addresses come from PROXY headers (v1 and v2), the
 * edge trusting 127.0.0.1 as its load balancer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  run,
  startRbldnsd,
  startServe,
  startSmtpSink,
  smtplibSession,
  swaksSession,
  tempDir,
  waitForSinkMessages,
  writeRules,
  type EdgeProcess,
  type Rbldnsd,
  type SessionReplies,
  type SmtpSink,
} from './peers.js';
import { sample } from '../support/metrics-text.js';

interface Stage {
  action: string;
  code?: number;
  reply?: string;
}
interface Prediction {
  client: string;
  connect: Stage;
  mail: Stage | null;
  rcpt: Array<Stage & { address: string }> | null;
  data: Stage | null;
}

interface Case {
  name: string;
  client: string;
  from: string;
  to: string[];
  headerFrom: string;
  driver: 'swaks-v1' | 'swaks-v2' | 'smtplib';
}

const LISTED = '192.0.2.66';
const cases: Case[] = [
  { name: 'clean sender relayed', client: '192.0.2.10', from: 'alice@sender.test', to: ['user@example.test'], headerFrom: 'alice@sender.test', driver: 'smtplib' },
  { name: 'clean IPv6 client, two recipients', client: '2001:db8::10', from: 'bob@sender.test', to: ['user@example.test', 'other@example.test'], headerFrom: 'bob@sender.test', driver: 'swaks-v2' },
  { name: 'IP restriction refuses the client', client: '203.0.113.5', from: 'carol@sender.test', to: ['user@example.test'], headerFrom: 'carol@sender.test', driver: 'swaks-v1' },
  { name: 'global deny list drops at MAIL FROM', client: '198.51.100.66', from: 'dave@sender.test', to: ['user@example.test'], headerFrom: 'dave@sender.test', driver: 'smtplib' },
  { name: 'global deny list, swaks, PROXY v2', client: '198.51.100.66', from: 'dave@sender.test', to: ['user@example.test'], headerFrom: 'dave@sender.test', driver: 'swaks-v2' },
  { name: 'DNSBL listed client: rejected, but the exception recipient gets through', client: LISTED, from: 'erin@sender.test', to: ['user@example.test', 'postmaster@example.test'], headerFrom: 'erin@sender.test', driver: 'smtplib' },
  { name: 'DNSBL listed client, swaks, PROXY v2', client: LISTED, from: 'erin@sender.test', to: ['user@example.test'], headerFrom: 'erin@sender.test', driver: 'swaks-v2' },
  { name: 'accept list skips the DNSBL', client: '198.51.100.10', from: 'frank@sender.test', to: ['user@example.test'], headerFrom: 'frank@sender.test', driver: 'swaks-v1' },
  { name: 'blocked envelope sender', client: '192.0.2.11', from: 'spammer@bad.test', to: ['user@example.test'], headerFrom: 'spammer@bad.test', driver: 'smtplib' },
  { name: 'blocked and unknown recipients', client: '192.0.2.12', from: 'gina@sender.test', to: ['blocked@example.test', 'nobody@example.test', 'user@example.test'], headerFrom: 'gina@sender.test', driver: 'smtplib' },
  { name: 'relay refused for a foreign domain', client: '192.0.2.13', from: 'hank@sender.test', to: ['someone@elsewhere.test'], headerFrom: 'hank@sender.test', driver: 'swaks-v1' },
  { name: 'blocked header From: at the end of DATA', client: '192.0.2.14', from: 'ivan@sender.test', to: ['user@example.test'], headerFrom: 'boss@blocked.test', driver: 'smtplib' },
];

let dir: string;
let sink: SmtpSink;
let rbl: Rbldnsd;
let edge: EdgeProcess;
let config: string;

before(async () => {
  dir = await tempDir('portcullis-interop-');
  sink = await startSmtpSink();
  // 127.0.0.2 listed and 127.0.0.1 not: the RFC 5782 test points, so the zone counts as healthy.
  rbl = await startRbldnsd({ 'bl.interop.test': ['127.0.0.2', LISTED, '198.51.100.10'] });
  config = await writeRules(dir, {
    hostname: 'edge.interop.test',
    acceptedDomains: ['example.test'],
    listeners: [
      {
        name: 'edge',
        listen: '127.0.0.1:0',
        proxyProtocol: { from: ['127.0.0.1'] },
        ipRestrictions: { default: 'grant', except: ['203.0.113.0/24'] },
      },
    ],
    connectionFilter: {
      accept: ['198.51.100.10'],
      deny: ['198.51.100.66'],
      exceptions: ['postmaster@example.test'],
      rules: [{ name: 'Interop BL', zone: 'bl.interop.test', match: 'any', message: '%0 is listed by %1' }],
    },
    senderFilter: { blocked: ['spammer@bad.test', '*@blocked.test'], action: 'reject' },
    recipientFilter: { blocked: ['blocked@example.test'], rejectUnknown: true },
    directory: { addresses: ['user@example.test', 'other@example.test', 'postmaster@example.test', 'blocked@example.test'] },
    dns: { servers: [`127.0.0.1:${rbl.port}`], timeoutMs: 2000, healthCheckIntervalSec: 0 },
    backend: { url: `smtp://127.0.0.1:${sink.port}`, timeoutMs: 10_000 },
    badmail: path.join(dir, 'badmail'),
    metrics: { listen: '127.0.0.1:0' },
    log: { level: 'info', protocolLog: path.join(dir, 'smtp.log') },
  });
  edge = await startServe(config, { withMetrics: true });
});

after(async () => {
  await edge?.stop();
  await sink?.stop();
  await rbl?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function predict(c: Case): Promise<Prediction> {
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, '--listener', 'edge', '--ip', c.client, '--helo', 'client.interop.test', '--from', c.from];
  for (const t of c.to) args.push('--to', t);
  args.push('--header-from', c.headerFrom, '--json');
  const res = await run(process.execPath, args, { timeoutMs: 60_000 });
  assert.equal(res.code, 0, `check failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as Prediction;
}

async function session(c: Case): Promise<SessionReplies> {
  const input = { port: edge.port, helo: 'client.interop.test', from: c.from, to: c.to, headerFrom: c.headerFrom, subject: `interop ${c.name}` };
  if (c.driver === 'smtplib') return smtplibSession({ ...input, proxy: { version: 1, source: c.client } });
  return swaksSession({ ...input, proxy: { version: c.driver === 'swaks-v2' ? 2 : 1, source: c.client } });
}

/** What smtp-sink should have received for a prediction: null when nothing should be relayed. */
function expectedDelivery(p: Prediction): string[] | null {
  if (p.data?.action !== 'relay') return null;
  return (p.rcpt ?? []).filter((r) => r.action === 'accept').map((r) => r.address);
}

let relayedSoFar = 0;

for (const c of cases) {
  test(`${c.name} (${c.driver}): serve answers as check predicts`, async () => {
    const p = await predict(c);
    const seen = await session(c);
    const where = `\npredicted: ${JSON.stringify(p)}\nseen: ${JSON.stringify(seen)}`;

    assert.equal(seen.greeting?.code, p.connect.action === 'drop' ? p.connect.code : 220, `greeting${where}`);
    if (p.connect.action === 'drop') {
      assert.equal(seen.mail, undefined, `nothing after a refused greeting${where}`);
    } else {
      assert.equal(seen.mail?.code, p.mail?.code, `MAIL FROM${where}`);
    }
    if (p.mail?.action === 'drop') {
      assert.equal(seen.rcpt.length, 0, `no RCPT answered after a drop${where}`);
      // smtplib goes on to RCPT TO and finds the connection closed; swaks just quits.
      if (c.driver === 'smtplib') assert.equal(seen.closedAt, 'rcpt', `the connection closes after a drop${where}`);
    }
    if (p.rcpt !== null && p.mail?.action !== 'drop') {
      const sent = seen.rcpt.map((r) => r.code);
      const predicted = p.rcpt.map((r) => r.code);
      // swaks stops offering recipients after MAIL FROM is refused; smtplib offers every one.
      assert.deepEqual(sent, predicted.slice(0, sent.length), `RCPT TO${where}`);
      if (c.driver === 'smtplib') assert.equal(sent.length, predicted.length, `every RCPT answered${where}`);
    }
    const delivery = expectedDelivery(p);
    if (delivery !== null) {
      assert.equal(seen.data?.code, 354, `DATA${where}`);
      assert.equal(seen.dataEnd?.code, 250, `end of DATA relayed${where}`);
    } else if (p.data !== null && p.data.code !== undefined && seen.dataEnd !== undefined) {
      assert.equal(seen.dataEnd.code, p.data.code, `end of DATA refused as predicted${where}`);
    } else if (p.data !== null && p.data.code !== undefined && seen.data !== undefined && seen.data.code !== 354) {
      assert.equal(seen.data.code, p.data.code, `DATA refused as predicted${where}`);
    }

    if (delivery !== null) relayedSoFar += 1;
    const received = await waitForSinkMessages(sink, relayedSoFar);
    assert.equal(received.length, relayedSoFar, `smtp-sink holds exactly the relayed messages${where}`);
    if (delivery !== null) {
      const mine = received.filter((m) => m.content.includes(`Subject: interop ${c.name}`));
      assert.equal(mine.length, 1, `this message reached smtp-sink once${where}`);
      const msg = mine[0]!;
      assert.equal(msg.mailFrom, c.from);
      assert.deepEqual(msg.rcptTo, delivery, `smtp-sink got exactly the accepted recipients${where}`);
      // The edge's own Received: header names the client the balancer reported, not 127.0.0.1.
      assert.ok(msg.content.toLowerCase().includes(p.client.toLowerCase()), `client address in the relayed header${where}\n${msg.content}`);
    }
  });
}

test('after the matrix: /metrics, the decision log and the protocol log tell the same story', async () => {
  const res = await fetch(`http://127.0.0.1:${edge.metricsPort}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.equal(sample(text, 'portcullis_sessions_total', { listener: 'edge' }), cases.length);
  assert.equal(sample(text, 'portcullis_relay_total', { outcome: 'delivered' }), relayedSoFar);
  assert.equal(sample(text, 'portcullis_verdicts_total', { rule: 'Interop BL', action: 'reject' }), 2);
  assert.equal(sample(text, 'portcullis_verdicts_total', { step: '6', action: 'drop' }), 2);
  // Step 5 decides nothing the client sees, but the accept-list hit is counted under its entry's redacted name.
  assert.equal(sample(text, 'portcullis_verdicts_total', { step: '5', check: 'global accept list', rule: 'list-entry', action: 'accept' }), 1);
  assert.ok(sample(text, 'portcullis_dnsbl_lookups_total', { zone: 'bl.interop.test', outcome: 'listed' }) >= 1);
  assert.equal(sample(text, 'portcullis_dnsbl_zone_health', { zone: 'bl.interop.test', state: 'healthy' }), 1);
  assert.equal(sample(text, 'portcullis_dnsbl_zone_health', { zone: 'bl.interop.test', state: 'unreachable' }), 0);
  assert.equal(sample(text, 'portcullis_open_connections', { listener: 'edge' }), 0);
  for (const c of cases) {
    assert.equal(text.includes(c.client), false, `metrics mention client ${c.client}`);
    for (const a of [c.from, ...c.to]) assert.equal(text.includes(a), false, `metrics mention ${a}`);
  }

  const decisions = edge
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.event === 'decision');
  const listed = decisions.filter((d) => d.client === LISTED && d.rule === 'Interop BL');
  assert.equal(listed.length, 2);
  for (const d of listed) assert.equal(d.reply, `550 5.7.1 ${LISTED} is listed by Interop BL`);
  assert.ok(decisions.some((d) => d.client === '203.0.113.5' && d.step === 2 && d.action === 'drop'));
  const accepted = decisions.filter((d) => d.step === 5);
  assert.deepEqual(
    accepted.map((d) => [d.client, d.check, d.rule, d.action, d.reply]),
    [['198.51.100.10', 'global accept list', '198.51.100.10', 'accept', '']],
  );

  const log = await fs.readFile(path.join(dir, 'smtp.log'), 'utf8');
  const line = (text: string): RegExp => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
  assert.match(log, line(` ${LISTED} <<< RCPT TO:<user@example.test>`));
  assert.match(log, line(` ${LISTED} >>> 550 5.7.1 ${LISTED} is listed by Interop BL`));
  assert.match(log, / 203\.0\.113\.5 >>> 554 5\.7\.1 Access denied/);
});

