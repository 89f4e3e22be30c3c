import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replyLine } from '../../src/policy/verdict.js';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';
import { limitRules, limitsFixture, type LimitsFixture } from './limits-support.js';

const CLIENT = '198.51.100.20';

async function rcpt(f: LimitsFixture, ip: string, from: string, to: string, listener = 'internet') {
  const s = f.engine.session(listener, ip);
  await s.admit();
  await s.mail(from);
  const v = await s.rcptTo(to);
  return { v, trace: s.trace.filter((t) => t.step === 12.2).map((t) => t.outcome) };
}

const grey = (over: Record<string, unknown> = {}) => limitRules({ greylisting: { delaySec: 300, retryWindowHours: 4, autoAllowAfter: 2, ...over } });

describe('greylisting', () => {
  it('first sight 451 4.7.1 at step 12.2, too early again, then accepted after the delay; the triplet is then known', async () => {
    const f = limitsFixture(grey());
    const first = await rcpt(f, CLIENT, 'a@example.org', 'alice@example.test');
    assert.equal(replyLine(first.v), '451 4.7.1 Greylisted, please try again later');
    assert.deepEqual([first.v.action, first.v.step, first.v.check], ['tempfail', 12.2, 'greylisting']);
    assert.deepEqual(first.trace, ['first sight of 198.51.100.0/24: deferred']);
    f.clock.advance(299_000);
    const early = await rcpt(f, '198.51.100.77', 'A@example.org', 'Alice@example.test');
    assert.deepEqual(early.trace, ['retried too early (1 s left): deferred'], 'same /24, same triplet in any case');
    f.clock.advance(1000);
    const retry = await rcpt(f, CLIENT, 'a@example.org', 'alice@example.test');
    assert.equal(retry.v.code, 250);
    assert.deepEqual(retry.trace, ['retried after 300 s: passed']);
    f.clock.advance(86_400_000);
    assert.deepEqual((await rcpt(f, CLIENT, 'a@example.org', 'alice@example.test')).trace, ['triplet passed before']);
    assert.equal((await rcpt(f, CLIENT, 'b@example.org', 'alice@example.test')).v.code, 451, 'another sender is another triplet');
    assert.deepEqual(f.events, ['grey deferred', 'grey deferred', 'grey passed', 'grey known', 'grey deferred']);
  });

  it('a retry after the window starts the clock again', async () => {
    const f = limitsFixture(grey());
    await rcpt(f, CLIENT, 'a@example.org', 'alice@example.test');
    f.clock.advance(4 * 3_600_000 + 1);
    const late = await rcpt(f, CLIENT, 'a@example.org', 'alice@example.test');
    assert.equal(late.v.code, 451);
    f.clock.advance(300_000);
    assert.equal((await rcpt(f, CLIENT, 'a@example.org', 'alice@example.test')).v.code, 250);
  });

  it('a network whose triplets passed autoAllowAfter times is no longer greylisted', async () => {
    const f = limitsFixture(grey());
    for (const from of ['a@example.org', 'b@example.org']) {
      await rcpt(f, CLIENT, from, 'alice@example.test');
      f.clock.advance(300_000);
      assert.equal((await rcpt(f, CLIENT, from, 'alice@example.test')).v.code, 250);
    }
    const fresh = await rcpt(f, '198.51.100.9', 'new@example.org', 'alice@example.test');
    assert.equal(fresh.v.code, 250);
    assert.deepEqual(fresh.trace, ['network 198.51.100.0/24 allowlisted after 2 passes']);
  });

  it('exempt clients and senders (list entries), the accept list, relay clients and exception recipients skip it', async () => {
    const f = limitsFixture(grey({ exemptClients: ['192.0.2.0/24'], exemptSenders: ['*@bigprovider.example'] }));
    assert.deepEqual((await rcpt(f, '192.0.2.7', 'a@example.org', 'alice@example.test')).trace, ['exempt (192.0.2.0/24)']);
    assert.deepEqual((await rcpt(f, CLIENT, 'x@bigprovider.example', 'alice@example.test')).trace, ['exempt (*@bigprovider.example)']);
    assert.deepEqual((await rcpt(f, '203.0.113.5', 'a@example.org', 'alice@example.test')).trace, ['skipped: client is on the accept list (203.0.113.5)']);
    assert.deepEqual((await rcpt(f, '10.1.2.3', 'a@example.org', 'bob@remote.example', 'submission')).trace, ['skipped: the client may relay']);
    const pm = await rcpt(f, CLIENT, 'a@example.org', 'postmaster@example.test');
    assert.equal(pm.v.code, 250);
    assert.deepEqual(pm.trace, []);
  });

  it('a client on a DNS allowlist (an allow rule at step 9) is not greylisted; one that is not listed there is', async () => {
    const rules = limitRules({
      greylisting: { delaySec: 300, retryWindowHours: 4, autoAllowAfter: 2 },
      connectionFilter: { accept: ['203.0.113.5'], rules: [{ name: 'Welcome', zone: 'wl.test', allow: true }] },
    });
    const listed = new Set(['192.0.2.44']);
    const f = limitsFixture(rules, undefined, undefined, {
      lookup: (zone, ip) =>
        Promise.resolve({ status: listed.has(ip) ? 'listed' : 'not-listed', codes: listed.has(ip) ? ['127.0.0.2'] : [], errorCodes: [], queryName: `q.${zone}`, cached: false }),
    });
    const allowed = await rcpt(f, '192.0.2.44', 'a@example.org', 'alice@example.test');
    assert.equal(allowed.v.code, 250);
    assert.deepEqual(allowed.trace, ['skipped: client is on a DNS allowlist (step 9)']);
    assert.equal((await rcpt(f, CLIENT, 'a@example.org', 'alice@example.test')).v.code, 451);
  });

  it('two engines on one store (two nodes) share triplets', async () => {
    const store = new MemoryStateStore(1000);
    const a = limitsFixture(grey(), store);
    const b = limitsFixture(grey(), store);
    assert.equal((await rcpt(a, CLIENT, 'a@example.org', 'alice@example.test')).v.code, 451);
    b.clock.advance(300_000);
    assert.equal((await rcpt(b, CLIENT, 'a@example.org', 'alice@example.test')).v.code, 250);
  });
});

describe('greylisting, hostile envelopes', () => {
  it('property: any sender and recipient text defers first, passes after the delay, and never meets another triplet', async () => {
    const { default: fc } = await import('fast-check');
    const part = fc.string({ minLength: 1, maxLength: 12 }).filter((x) => !/[\s<>@%!"\\]/.test(x));
    const sender = fc.tuple(part, part).map(([l, d]) => `${l}@${d}`);
    // Recipients in our domain, so relay protection lets them reach step 12.2.
    const local = part.map((l) => `${l}@example.test`);
    await fc.assert(
      fc.asyncProperty(fc.oneof(sender, fc.constant('')), local, local, async (from, to, other) => {
        const f = limitsFixture(grey());
        assert.equal((await rcpt(f, CLIENT, from, to)).v.code, 451);
        f.clock.advance(300_000);
        if (other.toLowerCase() !== to.toLowerCase()) assert.equal((await rcpt(f, CLIENT, from, other)).v.code, 451, 'another recipient is another triplet');
        assert.equal((await rcpt(f, CLIENT, from, to)).v.code, 250);
      }),
      { numRuns: 100 },
    );
  });
});
