/**
 * A 50 MB message through `portcullis serve` on a listener with sender authentication: the message is
 * spooled (past `senderAuth.spool.memoryBytes`, to a temporary file) so DKIM can hash the whole body
 * and Authentication-Results can go on top, then relayed whole. The edge's peak resident memory still
 * grows by a bounded amount, nowhere near the message's size, and the spool file is gone afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startBackend, type TestBackend } from '../support/backend-server.js';
import { BULK_HEADER, MIB, resetPeak, sendBulk, statusKiB } from '../support/bulk-message.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { launch, tempDir, waitForPorts, writeRules, type Running } from '../interop/peers.js';

const MESSAGE_BYTES = 50 * MIB;
/** The same bound as the streaming relay's (big-message.test.ts): spooling must not cost memory. */
const MAX_GROWTH_MIB = 20;

describe('a 50 MB message through a listener with sender authentication', () => {
  let backend: TestBackend;
  let dns: TestDnsServer;
  let edge: Running;
  let port: number;
  let dir: string;
  let spool: string;

  before(async () => {
    backend = await startBackend();
    dns = await startDnsServer({ records: { 'example.org': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] } } });
    dir = await tempDir('portcullis-big-auth-');
    spool = path.join(dir, 'spool');
    await fs.mkdir(spool);
    const config = await writeRules(dir, {
      hostname: 'edge.test',
      acceptedDomains: ['example.com'],
      listeners: [{ name: 'main', listen: '127.0.0.1:0', limits: { maxMessageSize: 64 * MIB, maxSessionSize: 128 * MIB }, senderAuth: { enforceSpf: true, enforceDmarc: true } }],
      senderAuth: { spool: { dir: spool } },
      dns: { servers: [dns.address], healthCheckIntervalSec: 0 },
      backend: { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 30_000 },
      badmail: path.join(dir, 'badmail'),
      log: { level: 'warn' },
    });
    edge = launch(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config]);
    [port] = (await waitForPorts(edge, 'tcp', 1, 30_000)) as [number];
  });

  after(async () => {
    await edge.stop();
    await backend.close();
    await dns.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is spooled, checked, relayed whole with Authentication-Results, and the edge grows by far less than the message', async (t) => {
    const pid = edge.child.pid as number;
    const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
    backend.behaviour = { discardData: true };
    assert.match(await sendBulk(port, { bytes: 64 * 1024, unit: line }), /^250 /);
    await resetPeak(pid);
    const baseline = await statusKiB(pid, 'VmRSS');

    const end = await sendBulk(port, { bytes: MESSAGE_BYTES, unit: line }, 300_000);

    const growthMiB = ((await statusKiB(pid, 'VmHWM')) - baseline) / 1024;
    assert.match(end, /^250 /, "the client got the back end's 250");
    const got = backend.messages.at(-1);
    assert.ok(got);
    const over = got.size - BULK_HEADER.length - MESSAGE_BYTES;
    assert.ok(over > 200 && over < 2048, `the back end got the message, our Received: and Authentication-Results (${over} bytes over)`);
    assert.deepEqual(await fs.readdir(spool), [], 'the spool file was removed');
    t.diagnostic(`edge peak RSS growth authenticating and relaying ${MESSAGE_BYTES / MIB} MiB: ${growthMiB.toFixed(1)} MiB`);
    assert.ok(growthMiB < MAX_GROWTH_MIB, `edge peak RSS grew ${growthMiB.toFixed(1)} MiB (bound ${MAX_GROWTH_MIB})`);
  });
});
