import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replyLine } from '../../src/policy/verdict.js';
import { MemoryStateStore } from '../../src/state/memory-state-store.js';
import { limitRules, limitsFixture } from './limits-support.js';

const CLIENT = '198.51.100.20';
const NEIGHBOUR = '198.51.100.21';

describe('rate limits', () => {
  it('connections per minute per client: 421 4.7.0 at step 2.1 past the limit, again in the next window', async () => {
    const f = limitsFixture(limitRules({ rateLimits: { client: { connectionsPerMinute: 2 } } }));
    const admit = () => f.engine.session('internet', CLIENT).admit();
    assert.equal((await admit()).action, 'accept');
    assert.equal((await admit()).action, 'accept');
    const v = await admit();
    assert.equal(replyLine(v), '421 4.7.0 Too many connections from your address, try again later');
    assert.deepEqual([v.action, v.step, v.check, v.rule], ['drop', 2.1, 'rate limits (connections)', 'client.connectionsPerMinute']);
    assert.equal((await f.engine.session('internet', NEIGHBOUR).admit()).action, 'accept', 'another address has its own count');
    f.clock.advance(60_000);
    assert.equal((await admit()).action, 'accept', 'a new window');
    assert.deepEqual(f.events, ['rate client.connectionsPerMinute']);
  });

  it('per network: the /24 counts together, the prefix is configurable', async () => {
    const f = limitsFixture(limitRules({ rateLimits: { network: { connectionsPerMinute: 1 } } }));
    assert.equal((await f.engine.session('internet', CLIENT).admit()).action, 'accept');
    const v = await f.engine.session('internet', NEIGHBOUR).admit();
    assert.equal(replyLine(v), '421 4.7.0 Too many connections from your network, try again later');
    const g = limitsFixture(limitRules({ rateLimits: { networkPrefix: { ipv4: 32 }, network: { connectionsPerMinute: 1 } } }));
    assert.equal((await g.engine.session('internet', CLIENT).admit()).action, 'accept');
    assert.equal((await g.engine.session('internet', NEIGHBOUR).admit()).action, 'accept');
    const v6 = limitsFixture(limitRules({ rateLimits: { network: { connectionsPerMinute: 1 } } }));
    assert.equal((await v6.engine.session('internet', '2001:db8:1:2::5').admit()).action, 'accept');
    assert.equal((await v6.engine.session('internet', '2001:db8:1:ffff::9').admit()).action, 'drop', 'one /48');
    assert.equal((await v6.engine.session('internet', '2001:db8:2::5').admit()).action, 'accept', 'another /48');
  });

  it('concurrent connections: counted at connect, given back at close, refused ones hold nothing', async () => {
    const f = limitsFixture(limitRules({ rateLimits: { client: { concurrentConnections: 2 } } }));
    const a = f.engine.session('internet', CLIENT);
    const b = f.engine.session('internet', CLIENT);
    assert.equal((await a.admit()).action, 'accept');
    assert.equal((await b.admit()).action, 'accept');
    const c = f.engine.session('internet', CLIENT);
    assert.equal(replyLine(await c.admit()), '421 4.7.0 Too many concurrent connections from your address, try again later');
    await c.close();
    await a.close();
    await a.close();
    assert.equal((await f.engine.session('internet', CLIENT).admit()).action, 'accept', 'one slot free after one close');
    assert.equal((await f.engine.session('internet', CLIENT).admit()).action, 'drop', 'a second close of the same session gives nothing back');
  });

  it('messages per minute per sender at MAIL FROM: 451 4.7.1 at step 7.1, across clients', async () => {
    const f = limitsFixture(limitRules({ rateLimits: { sender: { messagesPerMinute: 2 } } }));
    const s1 = f.engine.session('internet', CLIENT);
    await s1.admit();
    assert.equal((await s1.mail('Bulk@Example.org')).code, 250);
    assert.equal((await s1.mail('bulk@example.org')).code, 250);
    const s2 = f.engine.session('internet', '192.0.2.200');
    await s2.admit();
    const v = await s2.mail('bulk@EXAMPLE.org');
    assert.equal(replyLine(v), '451 4.7.1 Too many messages from this sender, try again later');
    assert.deepEqual([v.action, v.step, v.rule], ['tempfail', 7.1, 'sender.messagesPerMinute']);
    assert.equal((await s2.mail('other@example.org')).code, 250);
    assert.equal((await s2.mail('')).code, 250, 'the blank sender is not one sender');
    assert.equal((await s2.mail('')).code, 250);
    assert.equal((await s2.mail('')).code, 250);
    assert.ok(s2.trace.some((t) => t.step === 7.1 && t.outcome === 'sender.messagesPerMinute: 3 > 2: refused'));
  });

  it('recipients per minute per client at RCPT TO: 451 4.7.1 at step 12.1; refused recipients are not counted', async () => {
    const f = limitsFixture(limitRules({ rateLimits: { client: { recipientsPerMinute: 2 } }, recipientFilter: { rejectUnknown: true }, directory: { addresses: ['a@example.test', 'b@example.test', 'c@example.test'] } }));
    const s = f.engine.session('internet', CLIENT);
    await s.admit();
    await s.mail('x@example.org');
    assert.equal((await s.rcptTo('nobody@example.test')).code, 550);
    assert.equal((await s.rcptTo('a@example.test')).code, 250);
    assert.equal((await s.rcptTo('b@example.test')).code, 250);
    const v = await s.rcptTo('c@example.test');
    assert.equal(replyLine(v), '451 4.7.1 Too many recipients from your address, try again later');
    assert.equal(v.step, 12.1);
    assert.equal((await s.rcptTo('postmaster@example.test')).code, 250, 'exception recipients are always reachable');
  });

  it('the exemption list skips every limit', async () => {
    const f = limitsFixture(limitRules({ rateLimits: { exempt: ['198.51.100.0/24'], client: { connectionsPerMinute: 1, messagesPerMinute: 1 } } }));
    for (let i = 0; i < 3; i++) {
      const s = f.engine.session('internet', CLIENT);
      assert.equal((await s.admit()).action, 'accept');
      assert.equal((await s.mail('x@example.org')).code, 250);
      assert.ok(s.trace.some((t) => t.step === 2.1 && t.outcome === 'exempt (198.51.100.0/24)'));
    }
  });

  it('a rule set without rateLimits adds no step and no state', async () => {
    const store = new MemoryStateStore(100);
    const f = limitsFixture(limitRules({}), store);
    const s = f.engine.session('internet', CLIENT);
    await s.admit();
    await s.mail('x@example.org');
    await s.rcptTo('postmaster@example.test');
    assert.deepEqual(s.trace.filter((t) => !Number.isInteger(t.step)), []);
    assert.equal(store.size, 0);
  });
});
