/**
 * Faults on either side of the edge: the back end refusing, black-holing, replying 4xx/5xx at each
 * stage, dying mid-DATA; the client dying mid-DATA; a Badmail write failing; a broken reload.
 * Each asserts that nothing was lost (the client got a 4xx or the back end's own reply) and that
 * nothing was delivered that should not have been.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { closedPort, startBlackHole } from '../support/backend-server.js';
import { startDnsServer } from '../support/dns-server.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { sendMail, edgeRefusal } from '../support/smtp-client.js';

const MSG = 'From: <alice@example.org>\r\nSubject: t\r\n\r\nbody\r\n';
const TEMP = edgeRefusal('451 4.7.0 Temporary server error. Please try again later.');

async function greeted(h: Harness, listener = 'main') {
  const c = await h.connect(listener);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

describe('back end unavailable', () => {
  it('refusing connections: 451 4.7.0 to MAIL FROM, at once', async () => {
    const port = await closedPort();
    const h = await startHarness((r) => {
      // A time-out far above the bound below: only a refusal noticed at once can pass.
      r.backend = { url: `smtp://127.0.0.1:${port}`, timeoutMs: 10_000 };
    });
    try {
      const c = await greeted(h);
      const t0 = Date.now();
      assert.match((await c.cmd('MAIL FROM:<alice@example.org>', 15_000)).line, TEMP);
      const took = Date.now() - t0;
      assert.ok(took < 3000, `took ${took} ms, not at once`);
      assert.equal((await c.cmd('NOOP')).code, 250, 'the client session goes on');
      assert.equal(sample(await h.metrics.render(), 'portcullis_relay_total', { outcome: 'failed' }), 1, 'an unreachable back end is a failed relay');
    } finally {
      await h.close();
    }
  });

  it('black-holing: 451 4.7.0 within backend.timeoutMs, never a hang', async () => {
    const hole = await startBlackHole();
    const h = await startHarness((r) => {
      r.backend = { url: `smtp://127.0.0.1:${hole.port}`, timeoutMs: 500 };
    });
    try {
      const c = await greeted(h);
      const t0 = Date.now();
      assert.match((await c.cmd('MAIL FROM:<alice@example.org>', 5000)).line, TEMP);
      const took = Date.now() - t0;
      // Not before the time-out; after it, bounded (a hang would be many times this) but with room for a loaded machine.
      assert.ok(took >= 450 && took < 500 + 1500, `took ${took} ms`);
    } finally {
      await h.close();
      await hole.close();
    }
  });
});

describe('back end replies pass through at each stage', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  // The enhanced codes are the ones the smtp-server back end puts on each reply code.
  for (const [stage, code, enhanced] of [
    ['mail', 451, '4.3.0'],
    ['mail', 550, '5.1.1'],
    ['rcpt', 452, '4.2.2'],
    ['rcpt', 550, '5.1.1'],
    ['dataEnd', 451, '4.3.0'],
    ['dataEnd', 554, '5.6.0'],
  ] as const) {
    it(`${stage} ${code} reaches the client as ${code} ${enhanced}, nothing delivered`, async () => {
      const text = `Refused at ${stage}`;
      h.backend.behaviour =
        stage === 'mail'
          ? { mail: { code, text } }
          : stage === 'rcpt'
            ? { rcpt: { 'bob@example.com': { code, text } } }
            : { dataEnd: { code, text } };
      const before = h.backend.messages.length;
      try {
        const c = await greeted(h);
        const r = await sendMail(c, 'alice@example.org', ['bob@example.com'], MSG);
        const got = stage === 'mail' ? r.mail : stage === 'rcpt' ? r.rcpts[0] : r.end;
        assert.equal(got?.line, `${code} ${enhanced} ${text}`);
        assert.equal(h.backend.messages.length, before);
      } finally {
        h.backend.behaviour = {};
      }
    });
  }

  it('a back end that dies mid-DATA: the client gets 451 4.7.0 after its dot, nothing delivered', async () => {
    h.backend.behaviour = { dieAfterBytes: 50_000, discardData: true };
    const before = h.backend.messages.length;
    try {
      const c = await greeted(h);
      const body = ('x'.repeat(998) + '\r\n').repeat(500);
      const r = await sendMail(c, 'alice@example.org', ['bob@example.com'], `Subject: big\r\n\r\n${body}`);
      assert.match(r.end?.line ?? '', TEMP);
      assert.equal(h.backend.messages.length, before);
      assert.equal((await c.cmd('RSET')).code, 250, 'the client session goes on');
    } finally {
      h.backend.behaviour = {};
    }
  });

  it('a client that dies mid-DATA leaves nothing delivered: the back end never sees the final dot', async () => {
    const before = h.backend.messages.length;
    const incomplete = h.backend.incomplete;
    const dataStarted = h.backend.dataStarted;
    const c = await greeted(h);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: half\r\n\r\n' + 'y'.repeat(100_000) + '\r\n');
    // Kill the client only once the back end is inside DATA, so there is a transaction to abandon.
    for (let i = 0; i < 500 && h.backend.dataStarted === dataStarted; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.backend.dataStarted, dataStarted + 1, 'the back end began DATA');
    c.kill();
    for (let i = 0; i < 150 && h.backend.incomplete === incomplete; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.backend.incomplete, incomplete + 1, 'the back end transaction was abandoned');
    assert.equal(h.backend.messages.length, before, 'nothing delivered');
    const aborted = async (): Promise<number> => sample(await h.metrics.render(), 'portcullis_relay_total', { outcome: 'aborted' });
    for (let i = 0; i < 100 && (await aborted()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await aborted(), 1, 'the abandoned transaction is counted as aborted');
  });
});

describe('Badmail write failure', () => {
  it('answers 452 4.3.1 and delivers nothing', async () => {
    const h = await startHarness((r) => {
      r.senderFilter = { blocked: ['spam@bad.example'], action: 'archive' };
    });
    try {
      fs.rmSync(h.badmail, { recursive: true, force: true });
      fs.writeFileSync(h.badmail, 'not a directory');
      const c = await greeted(h);
      const r = await sendMail(c, 'spam@bad.example', ['bob@example.com'], MSG);
      assert.match(r.end?.line ?? '', edgeRefusal('452 4.3.1 Insufficient system storage'));
      assert.equal(h.backend.messages.length, 0);
      fs.rmSync(h.badmail);
      fs.mkdirSync(h.badmail);
    } finally {
      await h.close();
    }
  });
});

describe('reload', () => {
  it('a broken rule set is refused and the old rules stay; a good one applies to new sessions only', async () => {
    const h = await startHarness((r) => {
      r.senderFilter = { blocked: ['spam@bad.example'] };
    });
    try {
      const inFlight = await greeted(h);
      h.input.senderFilter = { blocked: ['spam@bad.example'], action: 'explode' };
      await assert.rejects(h.edge.reload());
      let c = await greeted(h);
      assert.match((await c.cmd('MAIL FROM:<spam@bad.example>')).line, edgeRefusal('550 5.1.0 Sender Denied'), 'old rules still apply');
      h.input.senderFilter = { blocked: ['other@bad.example'] };
      await h.edge.reload();
      c = await greeted(h);
      assert.equal((await c.cmd('MAIL FROM:<spam@bad.example>')).code, 250, 'new rules for new sessions');
      assert.match((await inFlight.cmd('MAIL FROM:<spam@bad.example>')).line, edgeRefusal('550 5.1.0 Sender Denied'), 'a session in flight keeps its rules');
    } finally {
      await h.close();
    }
  });

  it('a reload with the same dns settings keeps the DNSBL cache and zone health; new dns settings start afresh', async () => {
    const dns = await startDnsServer({ records: { '2.0.0.127.bl.test': { A: ['127.0.0.2'] } } });
    const h = await startHarness((r) => {
      r.dns = { servers: [dns.address], timeoutMs: 500, healthCheckIntervalSec: 0 };
      r.connectionFilter = { rules: [{ name: 'TestBL', zone: 'bl.test' }] };
    });
    // The client is 127.0.0.1: its lookup and the zone's health probe ask the same name.
    const asked = (): number => dns.queries.filter((n) => n === '1.0.0.127.bl.test').length;
    const rcpt = async (): Promise<number> => {
      const c = await greeted(h);
      assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
      const code = (await c.cmd('RCPT TO:<bob@example.com>')).code;
      c.send('QUIT');
      return code;
    };
    try {
      assert.equal(await rcpt(), 250);
      const before = asked();
      assert.ok(before >= 2, `the health probe and the session's lookup (${before})`);
      h.input.senderFilter = { blocked: ['other@bad.example'] };
      await h.edge.reload();
      assert.equal(await rcpt(), 250);
      assert.equal(asked(), before, 'no new health round, and the session was answered from the cache');
      h.input.dns = { servers: [dns.address], timeoutMs: 600, healthCheckIntervalSec: 0 };
      await h.edge.reload();
      assert.equal(await rcpt(), 250);
      assert.equal(asked(), before + 2, 'a new resolver: a new health round and an empty cache');
    } finally {
      await h.close();
      await dns.close();
    }
  });
});
