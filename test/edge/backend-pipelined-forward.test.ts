/**
 * XFORWARD pipelined with MAIL FROM is one wait for two replies (the reader's `skip`): what a caller
 * sees is what two waits in turn gave, the XFORWARD reply checked first, each reply given its own
 * time-out, and a refused XFORWARD never letting MAIL FROM's reply through.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BackendSession, type BackendTarget, type ForwardedClient } from '../../src/edge/backend-relay.js';
import { ReplyReader } from '../../src/edge/backend-reply-reader.js';
import { BackendTimeout, BackendUnavailable } from '../../src/edge/backend-unavailable.js';
import { startScriptedBackend, type ScriptedBackend } from '../support/scripted-backend.js';

const client: ForwardedClient = { address: '192.0.2.7', helo: 'client.example', proto: 'ESMTP' };

function target(port: number, timeoutMs = 2000): BackendTarget {
  return { host: '127.0.0.1', port, timeoutMs, starttls: false, tlsRejectUnauthorized: true, heloName: 'edge.test' };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => assert.fail('should fail'),
    (e: unknown) => e as Error,
  );
}

describe('a pipelined XFORWARD and MAIL FROM', () => {
  let backend: ScriptedBackend;
  before(async () => {
    backend = await startScriptedBackend();
  });
  after(async () => {
    await backend.close();
  });

  async function mailOn(timeoutMs = 2000): Promise<{ session: BackendSession; mail: Promise<unknown> }> {
    const session = await BackendSession.connect(target(backend.port, timeoutMs));
    assert.equal(session.begin(client), undefined, 'nothing to wait for: XFORWARD goes out with MAIL FROM');
    return { session, mail: session.mailFrom('a@example.org') };
  }

  it("resolves with MAIL FROM's own reply, both commands in one write, and leaves the transaction open", async () => {
    backend.script = {};
    const { session, mail } = await mailOn();
    const r = (await mail) as { code: number; enhanced: string };
    assert.equal(r.code, 250);
    assert.equal(r.enhanced, '2.1.0');
    assert.deepEqual(backend.connections.at(-1)?.commands.slice(1).map((c) => c.split(' ')[0]), ['XFORWARD', 'MAIL']);
    assert.equal(session.reusable, false, 'a transaction is open at the back end');
    await session.quit();
  });

  it('a refused XFORWARD rejects with BackendUnavailable and closes the session; the 250 to MAIL FROM is never passed on', async () => {
    backend.script = { xforward: '550 5.7.1 not from you\r\n' };
    const { session, mail } = await mailOn();
    const err = await failure(mail);
    assert.ok(err instanceof BackendUnavailable);
    assert.equal(err.message, 'back end unavailable: XFORWARD refused: 550');
    assert.equal(err.responseCode, 451);
    assert.equal(session.resettable, false, 'never lent again');
  });

  it("a 421 to XFORWARD is the back end closing: rejected with its text, as any command's 421", async () => {
    backend.script = { xforward: '421 4.3.2 going down\r\n' };
    const { session, mail } = await mailOn();
    const err = await failure(mail);
    assert.ok(err instanceof BackendUnavailable);
    assert.equal(err.message, 'back end unavailable: XFORWARD: 421 going down');
    assert.equal(session.resettable, false);
  });

  it('an XFORWARD never answered times out naming XFORWARD; one answered, a MAIL FROM never answered, naming MAIL FROM', async () => {
    // Replies are matched in order: a lone reply would be XFORWARD's, so neither is answered here.
    backend.script = { xforward: '', mail: '' };
    let { session, mail } = await mailOn(300);
    let err = await failure(mail);
    assert.ok(err instanceof BackendTimeout);
    assert.equal(err.message, 'back end unavailable: no reply to XFORWARD within 300 ms');
    assert.equal(session.resettable, false);
    session.abandon();
    backend.script = { mail: '' };
    ({ session, mail } = await mailOn(300));
    err = await failure(mail);
    assert.ok(err instanceof BackendTimeout);
    assert.equal(err.message, 'back end unavailable: no reply to MAIL FROM within 300 ms');
    session.abandon();
  });
});

describe('ReplyReader.skip', () => {
  const REFUSED = new BackendUnavailable('refused');
  const check = (r: { code: number }): void => {
    if (r.code !== 250) throw REFUSED;
  };

  it('gives the wait the reply after the skipped one, or fails it with what the check threw, however the bytes come and whenever the wait starts (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(250, 550), fc.integer({ min: 0, max: 30 }), fc.boolean(), async (first, cut, waitFirst) => {
        const reader = new ReplyReader(() => assert.fail('no protocol error'), { greeting: false });
        reader.expect(2);
        const bytes = Buffer.from(`${first} x\r\n251 mail\r\n`);
        const at = Math.min(cut, bytes.length);
        reader.skip('X', check);
        let wait: Promise<unknown> | undefined;
        if (waitFirst) wait = reader.next(1000, 'M');
        reader.push(bytes.subarray(0, at));
        reader.push(bytes.subarray(at));
        wait ??= reader.next(1000, 'M');
        const got = await wait.then(
          (r) => (r as { code: number }).code,
          (e: unknown) => e,
        );
        assert.equal(got, first === 250 ? 251 : REFUSED);
      }),
      { numRuns: 200 },
    );
  });

  it('a reply already read when skip is called is checked at once', async () => {
    const reader = new ReplyReader(() => assert.fail('no protocol error'), { greeting: false });
    reader.expect(2);
    reader.push(Buffer.from('550 no\r\n251 mail\r\n'));
    reader.skip('X', check);
    assert.equal(await reader.next(1000, 'M').catch((e: unknown) => e), REFUSED);
    assert.equal((await reader.next(1000, 'M')).code, 251, 'the reply after it is still there, as with two waits');
  });
});
