/** A mail loop between two engines (each one's smart host is the other): caught by the hop count, 4.4.6 NDR to the sender. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { mailboxDir } from '../../src/transport/maildir.js';
import { searchTrackingLog } from '../../src/transport/tracking-log.js';
import { freePort } from '../support/smtp-sink.js';
import { engineRules, maildirFiles, message, queuedId, sendMessage, startEngine, waitFor } from '../transport/engine-harness.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-loop-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('two engines forwarding to each other: the hop count stops the loop with an NDR 4.4.6 to the sender', async () => {
  const [portA, portB] = [await freePort(), await freePort()];
  const a = await startEngine(engineRules(path.join(dir, 'a'), {}, { listen: `127.0.0.1:${portA}`, connectors: [{ name: 'to-b', addressSpaces: ['*'], smartHost: `127.0.0.1:${portB}` }] }));
  const b = await startEngine(
    engineRules(path.join(dir, 'b'), { acceptedDomains: ['b.test'], directory: {} }, { listen: `127.0.0.1:${portB}`, connectors: [{ name: 'to-a', addressSpaces: ['*'], smartHost: `127.0.0.1:${portA}` }] }),
  );
  try {
    const id = queuedId((await sendMessage(a.address.port, { from: 'alice@example.test', to: ['x@loop.test'], content: message('Loop') })).at(-1)!);
    await waitFor(async () => (await maildirFiles(a.paths.mailboxDir, 'alice@example.test')).length === 1, 30_000, 'the NDR at A');
    const [file] = await maildirFiles(a.paths.mailboxDir, 'alice@example.test');
    const ndr = await readFile(path.join(mailboxDir(a.paths.mailboxDir, 'alice@example.test'), 'new', file!), 'utf8');
    assert.match(ndr, /Status: 4\.4\.6/);
    assert.match(ndr, /Action: failed/);
    assert.match(ndr, /Hop count exceeded \(16 > 15\)/);
    await waitFor(() => a.store.all().length === 0 && b.store.all().length === 0, 10_000, 'both queues empty');

    await a.tracking.flush();
    await b.tracking.flush();
    const hops = [...(await searchTrackingLog(a.paths.trackingLog, {})), ...(await searchTrackingLog(b.paths.trackingLog, {}))];
    const received = hops.filter((e) => e.event === 'received' && e.messageId === '<Loop@client.example.test>');
    assert.equal(received.length, 17, 'each receipt adds a Received: field; the 17th copy arrived with 16 (> 15, our own not counted) and is failed');
    assert.equal(hops.filter((e) => e.event === 'failed' && /4\.4\.6/.test(e.reason ?? '')).length, 1);
    assert.ok(hops.some((e) => e.id === id && e.event === 'transferred'));
  } finally {
    await a.close();
    await b.close();
  }
});
