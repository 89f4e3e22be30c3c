import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replyLine } from '../../src/policy/verdict.js';
import { limitRules, limitsFixture } from './limits-support.js';

describe('back pressure', () => {
  it('past a bound: new connections 421 4.3.2 and new transactions 452 4.3.1 at step 1.2; each change reported once', async () => {
    const f = limitsFixture(limitRules({ backPressure: { maxEventLoopLagMs: 200, maxRssMb: 1024 } }));
    const open = f.engine.session('internet', '198.51.100.20');
    assert.equal((await open.admit()).action, 'accept');
    assert.equal((await open.mail('a@example.org')).code, 250);
    f.load.eventLoopLagMs = 350;
    const refused = await f.engine.session('internet', '198.51.100.20').admit();
    assert.equal(replyLine(refused), '421 4.3.2 System not accepting network messages');
    assert.deepEqual([refused.action, refused.step, refused.check], ['drop', 1.2, 'back pressure']);
    const tx = await open.mail('a@example.org');
    assert.equal(replyLine(tx), '452 4.3.1 Insufficient system resources');
    assert.equal(tx.action, 'tempfail');
    assert.ok(open.trace.some((t) => t.step === 1.2 && t.outcome === 'under pressure: event loop lag 350 ms > 200 ms'));
    f.load.eventLoopLagMs = 10;
    f.load.rssMb = 2000;
    assert.equal((await open.mail('a@example.org')).code, 452, 'memory past its bound');
    f.load.rssMb = 500;
    assert.equal((await open.mail('a@example.org')).code, 250);
    assert.deepEqual(f.events, ['pressure true event loop lag 350 ms > 200 ms', 'pressure false event loop lag 10 ms, resident memory 500 MB']);
  });
});
