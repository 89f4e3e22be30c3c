/**
 * Rate limits, greylisting and back pressure end to end: the real edge, a real back end, clients on
 * real sockets (our raw client, swaks and python3's smtplib); time moved by a fake clock, load by a
 * fake probe.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { ResourceSample } from '../../src/runtime/resource-probe.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { sendMail, edgeRefusal } from '../support/smtp-client.js';

const run = promisify(execFile);

/** A clock that stands still until the test moves it. */
function fakeClock(): { now(): number; setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout; advance(ms: number): void } {
  let t = Date.now();
  return { now: () => t, setTimeout, clearTimeout, advance: (ms) => void (t += ms) };
}

async function until(ok: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('greylisting end to end', () => {
  let h: Harness;
  const clock = fakeClock();
  before(async () => {
    h = await startHarness((r) => {
      r.greylisting = { delaySec: 300, retryWindowHours: 4 };
    }, { clock });
  });
  after(() => h.close());

  it('first attempt 451 4.7.1 and nothing at the back end; the retry after the delay reaches it (python3 smtplib)', async () => {
    const c = await h.connect();
    await c.read();
    await c.cmd('EHLO client.example');
    const r = await sendMail(c, 'sender@example.org', ['bob@example.com'], 'Subject: grey\r\n\r\nhello\r\n');
    assert.match(r.rcpts[0]?.line, edgeRefusal('451 4.7.1 Greylisted, please try again later'));
    assert.equal(h.backend.messages.length, 0);
    clock.advance(300_000);
    const py = `
import smtplib
s = smtplib.SMTP('127.0.0.1', ${h.port()}, timeout=10)
s.ehlo('client.example')
s.sendmail('sender@example.org', ['bob@example.com'], 'Subject: grey\\r\\n\\r\\nhello again\\r\\n')
s.quit()
print('sent')`;
    const { stdout } = await run('python3', ['-c', py]);
    assert.equal(stdout.trim(), 'sent');
    assert.equal(h.backend.messages.length, 1);
    assert.deepEqual(h.backend.messages[0]?.to, ['bob@example.com']);
    const m = await h.metrics.render();
    assert.equal(sample(m, 'portcullis_greylisting_total', { outcome: 'deferred' }), 1);
    assert.equal(sample(m, 'portcullis_greylisting_total', { outcome: 'passed' }), 1);
    assert.equal(sample(m, 'portcullis_verdicts_total', { step: '12.2', check: 'greylisting', action: 'tempfail' }), 1);
  });
});

describe('rate limits end to end', () => {
  let h: Harness;
  const clock = fakeClock();
  before(async () => {
    h = await startHarness((r) => {
      r.listeners = [
        { name: 'main', listen: '127.0.0.1:0' },
        { name: 'other', listen: '127.0.0.1:0' },
      ];
      r.rateLimits = { client: { connectionsPerMinute: 3, concurrentConnections: 1 }, sender: { messagesPerMinute: 1 } };
    }, { clock });
  });
  after(() => h.close());

  it('concurrent connections: a second one at once gets 421 4.7.0; once the first has ended, a new one is greeted', async () => {
    const first = await h.connect();
    assert.equal((await first.read()).code, 220);
    const second = await h.connect('other');
    assert.match((await second.read()).line, edgeRefusal('421 4.7.0 Too many concurrent connections from your address, try again later'));
    assert.ok(await second.closedByServer());
    await first.cmd('QUIT');
    await until(async () => (await h.metrics.render()).includes('portcullis_open_connections{listener="main"} 0'), 'the first session to end');
    // The slot is given back as the session closes: poll until a new session is greeted (bounded).
    let greeted = false;
    for (let i = 0; i < 40 && !greeted; i++) {
      const c = await h.connect();
      greeted = (await c.read()).code === 220;
      await c.cmd('QUIT').catch(() => undefined);
      if (!greeted) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(greeted);
  });

  it('connections per minute: past the limit swaks sees 421 4.7.0 at connect, the next minute it is greeted; counted in metrics', async () => {
    clock.advance(60_000);
    const swaks = (from: string) =>
      run('swaks', ['--server', `127.0.0.1:${h.port()}`, '--from', from, '--to', 'bob@example.com', '--quit-after', 'MAIL', '--timeout', '10'])
        .then((r) => r.stdout)
        .catch((err: { stdout: string }) => err.stdout);
    for (let i = 0; i < 3; i++) {
      assert.match(await swaks(`s${i}@example.org`), /<- {2}220 /);
    }
    assert.match(await swaks('s9@example.org'), /<\*\* 421 4\.7\.0 Too many connections from your address, try again later/);
    clock.advance(60_000);
    assert.match(await swaks('s10@example.org'), /<- {2}220 /);
    const m = await h.metrics.render();
    assert.ok(sample(m, 'portcullis_rate_limited_total', { limit: 'client.connectionsPerMinute' }) >= 1);
    assert.equal(sample(m, 'portcullis_rate_limited_total', { limit: 'client.concurrentConnections' }), 1);
  });

  it('messages per minute per sender: the second MAIL FROM of one sender gets 451 4.7.1 and opens no back-end transaction', async () => {
    clock.advance(60_000);
    const c = await h.connect();
    await c.read();
    await c.cmd('EHLO client.example');
    const before = h.backend.messages.length;
    const ok = await sendMail(c, 'once@example.org', ['bob@example.com'], 'Subject: 1\r\n\r\none\r\n');
    assert.equal(ok.end?.code, 250);
    assert.match((await c.cmd('MAIL FROM:<once@example.org>')).line, edgeRefusal('451 4.7.1 Too many messages from this sender, try again later'));
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 503, 'no transaction was opened');
    assert.equal(h.backend.messages.length, before + 1);
    await c.cmd('QUIT');
  });
});

describe('back pressure end to end', () => {
  let h: Harness;
  const load: ResourceSample = { eventLoopLagMs: 0, rssMb: 100 };
  before(async () => {
    h = await startHarness((r) => {
      r.backPressure = { maxEventLoopLagMs: 500 };
    }, { probe: { sample: () => load, stop: () => undefined } });
  });
  after(() => h.close());

  it('under pressure: new connections 421 4.3.2, an open session\'s new transaction 452 4.3.1; afterwards mail flows again', async () => {
    const open = await h.connect();
    await open.read();
    await open.cmd('EHLO client.example');
    load.eventLoopLagMs = 900;
    const refused = await h.connect();
    assert.match((await refused.read()).line, edgeRefusal('421 4.3.2 System not accepting network messages'));
    assert.match((await open.cmd('MAIL FROM:<a@example.org>')).line, edgeRefusal('452 4.3.1 Insufficient system resources'));
    let m = await h.metrics.render();
    assert.equal(sample(m, 'portcullis_back_pressure'), 1);
    assert.equal(sample(m, 'portcullis_back_pressure_episodes_total'), 1);
    load.eventLoopLagMs = 5;
    const r = await sendMail(open, 'a@example.org', ['bob@example.com'], 'Subject: after\r\n\r\nok\r\n');
    assert.equal(r.end?.code, 250);
    m = await h.metrics.render();
    assert.equal(sample(m, 'portcullis_back_pressure'), 0);
    assert.equal(sample(m, 'portcullis_verdicts_total', { step: '1.2', check: 'back pressure' }), 2);
  });
});
