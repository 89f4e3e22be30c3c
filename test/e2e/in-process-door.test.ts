/**
 * The edge's in-process sessions with the bundled engine as `serve` wires them (in-process-session.ts,
 * cli/serve/in-process-engine.ts, the engine's open()): the message reaches the Maildir byte for byte,
 * a message that fails or is abandoned mid-way stores nothing, the engine's allowFrom still applies to
 * the caller in its process, and the engine's close() waits for a transaction in flight.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { inProcessEngine } from '../../src/cli/serve/in-process-engine.js';
import { BackendUnavailable } from '../../src/edge/backend-unavailable.js';
import { InProcessSession } from '../../src/edge/in-process-session.js';
import { Metrics } from '../../src/observability/metrics.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import type { TransportEngine } from '../../src/transport/engine.js';
import { sample } from '../support/metrics-text.js';
import { engineRules, maildirFiles, startEngine, waitFor } from '../transport/engine-harness.js';
import { relayed } from '../support/relayed.js';

const client = { address: '192.0.2.7', helo: 'Client.Remote.Test', proto: 'ESMTP' } as const;

/** `chunks` one after another, as the edge's DATA relay hands them on. */
async function* chunked(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}

describe('in-process sessions with the bundled engine', () => {
  let dir: string;
  let engine: TransportEngine;
  const metrics = new Metrics();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-door-'));
    engine = await startEngine(engineRules(path.join(dir, 'main'), {}, { fsync: false }), { metrics });
  });
  after(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const queued = async (): Promise<number> => sample(await metrics.render(), 'portcullis_transport_received_total', { outcome: 'queued' }) ?? 0;

  it('property: any body (dots opening lines included), however chunked, is in the Maildir byte for byte after the engine Received: naming the original client', async () => {
    const session = new InProcessSession(inProcessEngine(engine), 5000);
    const line = fc.oneof(fc.constantFrom('.', '..', '.dot', 'x.', ''), fc.stringMatching(/^[ -~]{0,30}$/));
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), async (lines, cuts) => {
        const subject = `door ${sent}`;
        const bytes = Buffer.from(`Subject: ${subject}\r\n\r\n${lines.join('\r\n')}\r\n`, 'latin1');
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...at].map((from, k) => bytes.subarray(from, [...at, bytes.length][k]));
        await session.begin(client);
        assert.equal((await session.mailFrom('sender@remote.test')).code, 250);
        assert.equal((await session.rcptTo('alice@example.test')).code, 250);
        const r = await relayed(session, chunked(chunks));
        assert.equal(r.code, 250);
        assert.match(r.lines[0] ?? '', /^<[^@>]+@mx\.example\.test> Queued mail for delivery$/);
        sent += 1;
        const root = engine.paths.mailboxDir;
        await waitFor(async () => (await maildirFiles(root, 'alice@example.test')).length === sent, 10_000, 'the delivery');
        const files = await Promise.all((await maildirFiles(root, 'alice@example.test')).map((f) => fs.promises.readFile(path.join(mailboxDir(root, 'alice@example.test'), 'new', f), 'latin1')));
        const mail = files.find((m) => m.includes(`\nSubject: ${subject}\n`));
        assert.ok(mail, subject);
        // Maildir files have LF line ends.
        const body = bytes.toString('latin1').replace(/\r\n/g, '\n');
        // After the engine's Received: field (its date line last), the body as it was sent.
        assert.equal(mail.slice(mail.indexOf(' +0000\n') + ' +0000\n'.length), body);
        assert.match(mail, /^Received: from client\.remote\.test \(\[192\.0\.2\.7\]\)$/m);
      }),
      { numRuns: 12 },
    );
    assert.equal(session.reusable, true, 'one session carried every transaction');
  });

  it('a body that fails mid-way rejects with its own error, and a session abandoned mid-body fails with 451 4.7.0; nothing is queued either way', async () => {
    const before = await queued();
    const backend = inProcessEngine(engine);
    const failing = new InProcessSession(backend, 5000);
    await failing.begin(client);
    await failing.mailFrom('sender@remote.test');
    await failing.rcptTo('alice@example.test');
    const gone = new Error('client went away');
    const broken = async function* (): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: half\r\n\r\nfirst half\r\n');
      throw gone;
    };
    await assert.rejects(relayed(failing, broken()), (err) => err === gone);
    assert.equal(failing.reusable, false);

    const abandoned = new InProcessSession(backend, 5000);
    await abandoned.begin(client);
    await abandoned.mailFrom('sender@remote.test');
    await abandoned.rcptTo('alice@example.test');
    const slow = async function* (): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: abandoned\r\n\r\n');
      abandoned.abandon();
      yield Buffer.from('rest\r\n');
    };
    await assert.rejects(relayed(abandoned, slow()), (err) => err instanceof BackendUnavailable && err.reply.code === 451 && err.reply.enhanced === '4.7.0');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await queued(), before, 'nothing was queued');
    const dirNew = path.join(mailboxDir(engine.paths.mailboxDir, 'alice@example.test'), 'new');
    for (const f of await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')) {
      assert.doesNotMatch(fs.readFileSync(path.join(dirNew, f), 'latin1'), /Subject: (half|abandoned)/);
    }
  });

  it("the engine's allowFrom applies to the caller in its process (as 127.0.0.1); close() waits for a transaction in flight, then refuses new ones", async () => {
    const strict = await startEngine(engineRules(path.join(dir, 'strict'), {}, { fsync: false, allowFrom: ['192.0.2.0/24'] }), { metrics });
    try {
      const refusedBefore = sample(await metrics.render(), 'portcullis_transport_received_total', { outcome: 'refused' }) ?? 0;
      await assert.rejects(new InProcessSession(inProcessEngine(strict), 5000).begin(client), (err) => err instanceof BackendUnavailable && err.reply.code === 451);
      assert.equal(sample(await metrics.render(), 'portcullis_transport_received_total', { outcome: 'refused' }), refusedBefore + 1);
    } finally {
      await strict.close();
    }

    const other = await startEngine(engineRules(path.join(dir, 'other'), {}, { fsync: false }));
    const session = new InProcessSession(inProcessEngine(other), 5000);
    await session.begin(client);
    await session.mailFrom('sender@remote.test');
    await session.rcptTo('alice@example.test');
    let closed = false;
    const closing = other.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(closed, false, 'close() waits for the transaction in flight');
    const r = await relayed(session, chunked([Buffer.from('Subject: last\r\n\r\nbody\r\n')]));
    assert.equal(r.code, 250, 'the transaction in flight is still taken');
    await closing;
    await assert.rejects(session.begin(client), (err) => err instanceof BackendUnavailable, 'a closed engine takes no new transaction');
  });
});
