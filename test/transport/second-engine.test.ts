/** Engine to engine: one bundled engine delivers to a second one on another port, by smart-host connector and by MX. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DnsClient } from '../../src/dns/client.js';
import type { TransportEngine } from '../../src/transport/engine.js';
import { mailboxDir } from '../../src/transport/maildir.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { engineRules, maildirFiles, message, queuedId, sendMessage, startEngine, waitFor } from './engine-harness.js';

let dir: string;
let dnsServer: TestDnsServer;
let second: TransportEngine;
const engines: TransportEngine[] = [];

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-engines-'));
  dnsServer = await startDnsServer();
  second = await startEngine(engineRules(path.join(dir, 'second'), {
    hostname: 'mx.other.test',
    acceptedDomains: ['other.test'],
    directory: { mailboxes: [{ address: 'carol@other.test', proxyAddresses: ['c@other.test'] }] },
  }));
  engines.push(second);
});

after(async () => {
  for (const e of engines) await e.close();
  await dnsServer.close();
  await rm(dir, { recursive: true, force: true });
});

/** Waits for `n` messages in a mailbox of the second engine and returns their contents. */
async function secondMailbox(mailbox: string, n: number): Promise<string[]> {
  await waitFor(async () => (await maildirFiles(second.paths.mailboxDir, mailbox)).length >= n, 15_000, `${n} message(s) for ${mailbox}`);
  const names = await maildirFiles(second.paths.mailboxDir, mailbox);
  return Promise.all(names.map((f) => readFile(path.join(mailboxDir(second.paths.mailboxDir, mailbox), 'new', f), 'utf8')));
}

test('smart-host connector: the first engine relays to the second, which delivers into its Maildir', async () => {
  const first = await startEngine(engineRules(path.join(dir, 'first-smarthost'), {}, {
    connectors: [{ name: 'to-other', addressSpaces: ['other.test'], smartHost: `127.0.0.1:${second.address.port}` }],
  }));
  engines.push(first);
  const replies = await sendMessage(first.address.port, { from: 'alice@example.test', to: ['c@other.test'], content: message('via smart host') });
  queuedId(replies.at(-1)!);
  const [copy] = await secondMailbox('carol@other.test', 1);
  assert.match(copy!, /^Return-Path: <alice@example.test>\nDelivered-To: carol@other.test\n/);
  assert.match(copy!, /Subject: via smart host/);
  assert.ok((copy!.match(/^Received:/gm) ?? []).length >= 2, 'both engines added a Received: header');
});

test('MX: the first engine looks up the MX and delivers to the second engine on transport.remote.port', async () => {
  dnsServer.setRecords({
    'other.test': { MX: [{ exchange: 'mx.other.test', preference: 10 }] },
    'mx.other.test': { A: ['127.0.0.1'] },
  });
  const first = await startEngine(
    engineRules(path.join(dir, 'first-mx'), {}, { remote: { port: second.address.port } }),
    { dnsClient: new DnsClient({ servers: [dnsServer.address], timeoutMs: 1000 }) },
  );
  engines.push(first);
  const before = (await maildirFiles(second.paths.mailboxDir, 'carol@other.test')).length;
  const replies = await sendMessage(first.address.port, { from: 'bob@example.test', to: ['carol@other.test'], content: message('via mx') });
  queuedId(replies.at(-1)!);
  const copies = await secondMailbox('carol@other.test', before + 1);
  assert.ok(copies.some((c) => /Subject: via mx/.test(c) && /^Return-Path: <bob@example.test>/.test(c)));
  assert.ok(dnsServer.questions.some((q) => q.type === 'MX' && q.name === 'other.test'));
});
