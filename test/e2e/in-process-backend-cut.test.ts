/**
 * The edge and the bundled engine in one process, wired as `serve` wires them (in-memory stream
 * pairs): when the engine's end of a pair is closed or destroyed in the middle of a transaction, the
 * client is told 451 4.7.0, never 250, nothing is delivered, and its next message goes through on a
 * new pair.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import { inProcessEngine } from '../../src/cli/serve/in-process-engine.js';
import { startEdge, type Edge } from '../../src/edge/edge.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { withBundledBackend } from '../../src/transport/bundled-backend.js';
import type { TransportEngine } from '../../src/transport/engine.js';
import { engineRules, maildirFiles, startEngine, waitFor } from '../transport/engine-harness.js';
import { sample } from '../support/metrics-text.js';
import { RawSmtpClient } from '../support/smtp-client.js';

let dir: string;
let engine: TransportEngine;
let edge: Edge;
const metrics = new Metrics();
/** The engine's end of every pair the edge opened, in order. */
const engineEnds: Duplex[] = [];

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-cut-'));
  const rules = engineRules(dir, { listeners: [{ name: 'main', listen: '127.0.0.1:0' }] }, { fsync: false });
  engine = await startEngine(rules, { metrics });
  const backend = inProcessEngine({
    address: engine.address,
    accept: (stream) => {
      engineEnds.push(stream);
      engine.accept(stream);
    },
  });
  edge = await startEdge({ load: async () => withBundledBackend(rules, engine) }, { metrics, logger: createLogger({ level: 'silent' }), inProcessBackend: backend });
});
after(async () => {
  await edge.close(200);
  await engine.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The one pair the edge is using now (the pool holds at most one here). */
function liveEnd(): Duplex {
  const live = engineEnds.filter((e) => !e.destroyed);
  assert.equal(live.length, 1, 'one back-end session, lent to this transaction');
  return live[0]!;
}

const cuts = [
  { how: 'destroys', when: 'before DATA', cut: (e: Duplex) => e.destroy() },
  { how: 'closes', when: 'before DATA', cut: (e: Duplex) => e.end() },
  { how: 'destroys', when: 'in the middle of DATA', cut: (e: Duplex) => e.destroy() },
  { how: 'closes', when: 'in the middle of DATA', cut: (e: Duplex) => e.end() },
];

for (const [i, { how, when, cut }] of cuts.entries()) {
  test(`the engine ${how} its end of the pair ${when}: the client gets 451 4.7.0, and its next message is delivered over a new pair`, async () => {
    const before = engineEnds.length;
    const c = await RawSmtpClient.connect(edge.addresses.main!.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example.test')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<sender@remote.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    const end = liveEnd();
    // The edge answers DATA itself (it holds the message until its header checks have passed), so the
    // back end's loss shows in the reply to the final dot.
    if (when === 'before DATA') cut(end);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`Subject: cut ${i}\r\n\r\nfirst half\r\n`);
    if (when === 'in the middle of DATA') {
      // The first half is on its way to the engine before the cut.
      await new Promise((r) => setTimeout(r, 50));
      cut(end);
    }
    c.write('second half\r\n.\r\n');
    assert.match((await c.read()).line, /^451 4\.7\.0 /);
    await waitFor(() => end.destroyed, 5000, 'the cut pair to close');

    assert.equal((await c.cmd('MAIL FROM:<sender@remote.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`Subject: after cut ${i}\r\n\r\nbody\r\n.\r\n`);
    assert.equal((await c.read()).code, 250);
    c.quit();
    assert.ok(engineEnds.length > before, 'the pool opened a new pair for the next message');

    await waitFor(async () => (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).length === i + 1, 10_000, 'the delivery');
    const subjects = (await maildirFiles(engine.paths.mailboxDir, 'alice@example.test')).map((f) =>
      /\nSubject: ([^\r\n]*)/.exec(fs.readFileSync(path.join(engine.paths.mailboxDir, 'alice@example.test', 'new', f), 'latin1'))?.[1],
    );
    assert.deepEqual(subjects.sort(), cuts.slice(0, i + 1).map((_, k) => `after cut ${k}`), 'only the messages answered 250 were delivered');
    assert.equal(sample(await metrics.render(), 'portcullis_transport_received_total', { outcome: 'queued' }), i + 1);
  });
}
