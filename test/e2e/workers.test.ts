/**
 * `portcullis serve` with `workers: 2` as real processes: one port, two edge workers behind it, the
 * primary speaking for them (reloads all or none, drains all, replaces a dead one, one `/metrics`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBackend, type TestBackend } from '../support/backend-server.js';
import { startDnsServer } from '../support/dns-server.js';
import { sample } from '../support/metrics-text.js';
import { RawSmtpClient, edgeRefusal, sendMail } from '../support/smtp-client.js';
import { bundledServeRules, serve, type Served } from '../support/serve-process.js';

const SESSIONS = 40;
const PER_CLIENT = 4;

function rulesYaml(backendPort: number, blocked: string): string {
  // YAML, so that a broken value has a line number to report.
  return [
    'hostname: edge.test',
    'acceptedDomains: [example.com]',
    'listeners:',
    '  - name: main',
    "    listen: '127.0.0.1:0'",
    '    limits:',
    `      maxConnectionsPerClient: ${PER_CLIENT * 100}`,
    'senderFilter:',
    `  blocked: ['${blocked}']`,
    'dns:',
    "  servers: ['127.0.0.1:9']",
    '  healthCheckIntervalSec: 0',
    'backend:',
    `  url: smtp://127.0.0.1:${backendPort}`,
    '  timeoutMs: 5000',
    'metrics:',
    "  listen: '127.0.0.1:0'",
    'badmail: badmail',
    'log:',
    '  level: info',
    'shutdownGraceMs: 3000',
    'workers: 2',
    '',
  ].join('\n');
}

async function greeted(port: number): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(port);
  assert.equal((await c.read(15000)).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

/** MAIL FROM's reply on each of `n` fresh connections, opened together. */
async function mailReplies(port: number, from: string, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const c = await greeted(port);
      const r = await c.cmd(`MAIL FROM:<${from}>`);
      c.quit();
      return r.line;
    }),
  );
}

describe('portcullis serve, workers: 2', () => {
  let backend: TestBackend;
  let dir: string;
  let config: string;
  let s: Served;
  let metricsUrl: string;
  const scrape = async (): Promise<string> => {
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    backend = await startBackend();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-workers-'));
    config = path.join(dir, 'portcullis.yaml');
    fs.writeFileSync(config, rulesYaml(backend.port, 'spam@bad.example'));
    s = await serve(config);
    await s.waitLog((l) => l.event === 'ready', 60_000);
    const m = await s.waitLog((l) => l.msg === 'metrics listening');
    metricsUrl = `http://${String(m.metrics)}/metrics`;
  });
  after(async () => {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('accepts mail on one port from many clients, both workers take sessions, and /metrics counts each session once', async () => {
    const listening = s.lines.filter((l) => l.msg === 'listening');
    assert.equal(new Set(listening.map((l) => l.pid)).size, 2, 'two processes opened the listener');
    assert.equal(new Set(listening.map((l) => l.port)).size, 1, 'on one shared port');
    const before = backend.messages.length;
    const results = await Promise.all(
      Array.from({ length: SESSIONS }, async (_, i) => {
        const c = await greeted(s.port);
        const r = await sendMail(c, `sender${i}@example.org`, ['bob@example.com'], `Subject: ${i}\r\n\r\nbody ${i}\r\n`);
        c.quit();
        return r.end?.code;
      }),
    );
    assert.deepEqual(results, Array(SESSIONS).fill(250));
    assert.equal(backend.messages.length - before, SESSIONS, 'every message reached the back end once');
    const text = await scrape();
    assert.equal(sample(text, 'portcullis_sessions_total', { listener: 'main' }), SESSIONS, 'the group reports each session once');
    assert.equal(sample(text, 'portcullis_workers'), 2);
    const perWorker = [...text.matchAll(/^portcullis_worker_sessions\{worker="(\d+)"\} (\d+)$/gm)].map((m) => Number(m[2]));
    assert.equal(perWorker.length, 2, text);
    assert.ok(perWorker.every((n) => n > 0), `both workers handled sessions: ${perWorker.join(', ')}`);
    assert.equal(perWorker.reduce((a, b) => a + b, 0), SESSIONS);
    const health = await fetch(metricsUrl.replace(/\/metrics$/, '/healthz'));
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok', workers: 2 });
  });

  it('each worker accepts from the shared socket itself: with the primary stopped, new clients are greeted and their mail relayed', async () => {
    const before = backend.messages.length;
    process.kill(s.child.pid!, 'SIGSTOP');
    try {
      const results = await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          const c = await RawSmtpClient.connect(s.port);
          // Under Node's round-robin the primary's accept would hold every greeting until SIGCONT.
          assert.equal((await c.read(3000)).code, 220);
          assert.equal((await c.cmd('EHLO client.example')).code, 250);
          const r = await sendMail(c, `stopped${i}@example.org`, ['bob@example.com'], `Subject: ${i}\r\n\r\nprimary stopped\r\n`);
          c.quit();
          return r.end?.code;
        }),
      );
      assert.deepEqual(results, Array(4).fill(250));
      assert.equal(backend.messages.length - before, 4);
    } finally {
      process.kill(s.child.pid!, 'SIGCONT');
    }
  });

  it('SIGHUP with a good change: every worker refuses the newly blocked sender on fresh connections', async () => {
    fs.writeFileSync(config, rulesYaml(backend.port, 'new@bad.example'));
    const seen = s.lines.length;
    s.child.kill('SIGHUP');
    await s.waitLog((l) => l.msg === 'rule set reloaded' && l.workers === 2 && s.lines.indexOf(l) >= seen);
    assert.deepEqual((await mailReplies(s.port, 'new@bad.example', 10)).map((l) => edgeRefusal('550 5.1.0 Sender Denied').test(l)), Array(10).fill(true));
    assert.deepEqual(await mailReplies(s.port, 'spam@bad.example', 10), Array(10).fill('250 2.1.0 Accepted'));
  });

  it('SIGHUP with a bad rule: refused with file:line and key, the old rules stay in every worker', async () => {
    fs.writeFileSync(config, rulesYaml(backend.port, 'newer@bad.example').replace('maxConnectionsPerClient: 400', 'maxConnectionsPerClient: -1'));
    const seen = s.lines.length;
    s.child.kill('SIGHUP');
    const refused = await s.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload refused') && s.lines.indexOf(l) >= seen);
    assert.match(String(refused.err), new RegExp(`^${config.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:7: listeners\\[0\\]\\.limits\\.maxConnectionsPerClient: `));
    assert.deepEqual((await mailReplies(s.port, 'new@bad.example', 10)).map((l) => edgeRefusal('550 5.1.0 Sender Denied').test(l)), Array(10).fill(true));
    assert.deepEqual(await mailReplies(s.port, 'newer@bad.example', 10), Array(10).fill('250 2.1.0 Accepted'));
    // Valid for the primary but not for a running listener (renamed): the workers refuse it, none switches.
    fs.writeFileSync(config, rulesYaml(backend.port, 'newer@bad.example').replace('name: main', 'name: renamed'));
    const seen2 = s.lines.length;
    s.child.kill('SIGHUP');
    const byWorkers = await s.waitLog((l) => l.msg === 'reload refused: the rule set cannot be applied; the old one stays' && Array.isArray(l.workers) && s.lines.indexOf(l) >= seen2);
    assert.match(String(byWorkers.err), /^listeners\[0\]\.name: 'renamed' is not a running listener/);
    assert.deepEqual(await mailReplies(s.port, 'newer@bad.example', 10), Array(10).fill('250 2.1.0 Accepted'));
    assert.deepEqual((await mailReplies(s.port, 'new@bad.example', 10)).map((l) => edgeRefusal('550 5.1.0 Sender Denied').test(l)), Array(10).fill(true));
    fs.writeFileSync(config, rulesYaml(backend.port, 'new@bad.example'));
  });

  it('a killed worker is replaced: logged, counted, and the group takes mail on both workers again', async () => {
    const pids = new Set(s.lines.filter((l) => l.msg === 'listening').map((l) => l.pid));
    const victim = [...pids][0] as number;
    process.kill(victim, 'SIGKILL');
    const exit = await s.waitLog((l) => l.event === 'worker-exit');
    assert.equal(exit.pid, victim);
    assert.equal(exit.signal, 'SIGKILL');
    const fresh = await s.waitLog((l) => l.msg === 'listening' && !pids.has(l.pid), 60_000);
    assert.notEqual(fresh.pid, victim);
    // The replacement started from the generation in force, not from whatever the file says.
    assert.deepEqual((await mailReplies(s.port, 'new@bad.example', 10)).map((l) => edgeRefusal('550 5.1.0 Sender Denied').test(l)), Array(10).fill(true));
    const text = await scrape();
    assert.equal(sample(text, 'portcullis_worker_restarts_total'), 1);
    assert.equal(sample(text, 'portcullis_workers'), 2);
  });

  it('SIGTERM: every worker drains, a session in flight is finished, the primary exits 0', async () => {
    const busy = await greeted(s.port);
    assert.equal((await busy.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    assert.equal((await busy.cmd('RCPT TO:<bob@example.com>')).code, 250);
    const before = backend.messages.length;
    const seen = s.lines.length;
    s.child.kill('SIGTERM');
    await s.waitLog((l) => l.event === 'drain' && l.pid !== undefined && l.sessions === 1 && s.lines.indexOf(l) >= seen);
    assert.equal((await busy.cmd('DATA')).code, 354);
    busy.write('Subject: in flight\r\n\r\nfinished while draining\r\n.\r\n');
    assert.equal((await busy.read()).code, 250);
    busy.quit();
    assert.equal(await s.exited, 0);
    assert.equal(backend.messages.length, before + 1, 'the session in flight was delivered');
    const workerExits = s.lines.filter((l) => l.event === 'exit' && l.pid !== undefined && s.lines.indexOf(l) >= seen);
    assert.equal(workerExits.length, 2, JSON.stringify(workerExits));
    const last = s.lines.at(-1)!;
    assert.equal(last.event, 'exit');
    assert.equal(last.code, 0);
    assert.equal(last.workers, 2);
  });
});

describe('portcullis serve, workers: 2, the limits and the engine the group shares', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-workers-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('maxConnectionsPerClient holds across the group: each worker admits its share, together never more than the limit', async () => {
    const backend = await startBackend();
    const config = path.join(dir, 'limit.yaml');
    fs.writeFileSync(config, rulesYaml(backend.port, 'spam@bad.example').replace(`maxConnectionsPerClient: ${PER_CLIENT * 100}`, `maxConnectionsPerClient: ${PER_CLIENT}`));
    const s = await serve(config);
    const open: RawSmtpClient[] = [];
    try {
      await s.waitLog((l) => l.event === 'ready', 60_000);
      const greetings = await Promise.all(
        Array.from({ length: 3 * PER_CLIENT }, async () => {
          const c = await RawSmtpClient.connect(s.port);
          open.push(c);
          return (await c.read(15000)).line;
        }),
      );
      const admitted = greetings.filter((g) => g.startsWith('220 ')).length;
      const refused = greetings.filter((g) => g === '421 4.7.0 Too many connections from your address, try again later').length;
      assert.equal(admitted + refused, greetings.length, JSON.stringify(greetings));
      assert.ok(admitted <= PER_CLIENT, `at most ${PER_CLIENT} admitted across both workers, got ${admitted}`);
      assert.ok(admitted >= PER_CLIENT / 2, `at least one worker's share admitted, got ${admitted}`);
    } finally {
      for (const c of open) c.quit();
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
      await backend.close();
    }
  });

  it("Node's NODE_CLUSTER_SCHED_POLICY=rr still decides when set: the primary accepts, so a stopped primary holds new greetings", async () => {
    const backend = await startBackend();
    const config = path.join(dir, 'rr.yaml');
    fs.writeFileSync(config, rulesYaml(backend.port, 'spam@bad.example'));
    const s = await serve(config, { NODE_CLUSTER_SCHED_POLICY: 'rr' });
    let c: RawSmtpClient | undefined;
    try {
      await s.waitLog((l) => l.event === 'ready', 60_000);
      process.kill(s.child.pid!, 'SIGSTOP');
      c = await RawSmtpClient.connect(s.port);
      await assert.rejects(c.read(1500), /no reply within 1500 ms/);
      process.kill(s.child.pid!, 'SIGCONT');
      assert.equal((await c.read(15000)).code, 220);
    } finally {
      process.kill(s.child.pid!, 'SIGCONT');
      c?.quit();
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
      await backend.close();
    }
  });

  it('DNSBL lookups work in every worker (each has its own UDP sockets, not the cluster-shared kind)', async () => {
    const dns = await startDnsServer({ records: { '2.0.0.127.bl.test': { A: ['127.0.0.2'] } } });
    const backend = await startBackend();
    const config = path.join(dir, 'dnsbl.yaml');
    fs.writeFileSync(
      config,
      JSON.stringify({
        hostname: 'edge.test',
        acceptedDomains: ['example.com'],
        listeners: [{ name: 'main', listen: '127.0.0.1:0' }],
        connectionFilter: { rules: [{ name: 'TestBL', zone: 'bl.test', message: '%0 has been blocked by %1' }] },
        dns: { servers: [dns.address], timeoutMs: 1000, healthCheckIntervalSec: 0 },
        backend: { url: `smtp://127.0.0.1:${backend.port}` },
        badmail: path.join(dir, 'badmail'),
        log: { level: 'info' },
        shutdownGraceMs: 500,
        workers: 2,
      }),
    );
    const s = await serve(config);
    try {
      await s.waitLog((l) => l.event === 'ready', 60_000);
      const ends = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const c = await greeted(s.port);
          const r = await sendMail(c, 'sender@example.org', ['bob@example.com'], 'Subject: x\r\n\r\nbody\r\n');
          c.quit();
          return r.end?.code;
        }),
      );
      // 127.0.0.1 is the zone's own "never listed" test point: looked up, not listed, mail relayed.
      assert.deepEqual(ends, Array(8).fill(250), JSON.stringify(s.lines.filter((l) => l.level !== 'info')));
      assert.ok(dns.queries.includes('1.0.0.127.bl.test'), 'the workers asked the DNSBL');
      assert.equal(s.lines.filter((l) => l.event === 'worker-exit').length, 0, 'no worker died');
      assert.equal(backend.messages.length, 8);
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
      await backend.close();
      await dns.close();
    }
  });

  it('the bundled engine runs once, in the primary, and every worker relays to it', async () => {
    const config = path.join(dir, 'bundled.yaml');
    const data = path.join(dir, 'data');
    fs.writeFileSync(config, bundledServeRules(data, { workers: 2 }));
    const s = await serve(config);
    try {
      await s.waitLog((l) => l.event === 'ready', 60_000);
      const ends = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const c = await greeted(s.port);
          const r = await sendMail(c, 'sender@example.org', ['alice@example.com'], `Subject: ${i}\r\n\r\nbody\r\n`);
          c.quit();
          return r.end?.code;
        }),
      );
      assert.deepEqual(ends, Array(6).fill(250));
      const mailbox = path.join(data, 'mailboxes', 'alice@example.com', 'new');
      for (let i = 0; i < 100 && (!fs.existsSync(mailbox) || fs.readdirSync(mailbox).length < 6); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(fs.readdirSync(mailbox).length, 6, 'the one engine delivered every message');
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
    }
  });

  it('greylisting and rate limits without state.url: the primary warns that they count per worker', async () => {
    const backend = await startBackend();
    const config = path.join(dir, 'per-worker.yaml');
    fs.writeFileSync(config, `${rulesYaml(backend.port, 'spam@bad.example')}greylisting: { delaySec: 60 }\nrateLimits: { client: { messagesPerMinute: 100 } }\n`);
    const s = await serve(config);
    try {
      const warning = await s.waitLog((l) => l.event === 'per-worker-state', 60_000);
      assert.deepEqual([warning.level, warning.workers, warning.keys], ['warn', 2, ['rateLimits', 'greylisting']]);
    } finally {
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 0);
      await backend.close();
    }
  });
});
