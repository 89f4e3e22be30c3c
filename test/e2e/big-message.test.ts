/**
 * A 50 MB message through `portcullis serve` (its own process) to a back end that reads slower than
 * the client writes: it arrives whole, the client gets the back end's 250, and the edge's peak
 * resident memory grows by a bounded amount, nowhere near the message's size. The bound is on
 * memory, not time: VmHWM is reset after a warm-up and read once the message is through.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startBackend, type TestBackend } from '../support/backend-server.js';
import { BULK_HEADER, MIB, resetPeak, sendBulk, statusKiB } from '../support/bulk-message.js';
import { launch, tempDir, waitForPorts, writeRules, type Running } from '../interop/peers.js';

const MESSAGE_BYTES = 50 * MIB;
/** Measured: ~6 MiB with the relay as it is; ~33 MiB when dead buffers were left to V8's own pace. */
const MAX_GROWTH_MIB = 20;
/** The back end takes DATA at this rate, a fraction of what loopback carries. */
const BACKEND_BYTES_PER_SECOND = 25 * MIB;

describe('a 50 MB message through portcullis serve', () => {
  let backend: TestBackend;
  let edge: Running;
  let port: number;
  let dir: string;

  before(async () => {
    backend = await startBackend();
    dir = await tempDir('portcullis-big-');
    const config = await writeRules(dir, {
      hostname: 'edge.test',
      acceptedDomains: ['example.com'],
      listeners: [{ name: 'main', listen: '127.0.0.1:0', limits: { maxMessageSize: 64 * MIB, maxSessionSize: 128 * MIB } }],
      dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
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
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('arrives whole behind a slow back end, and the edge grows by far less than the message', async (t) => {
    const pid = edge.child.pid as number;
    const line = Buffer.from(`${'x'.repeat(76)}\r\n`);
    backend.behaviour = { discardData: true };
    assert.match(await sendBulk(port, { bytes: 64 * 1024, unit: line }), /^250 /);
    backend.behaviour = { discardData: true, dataBytesPerSecond: BACKEND_BYTES_PER_SECOND };
    // From here VmHWM is the peak of the big transaction alone.
    await resetPeak(pid);
    const baseline = await statusKiB(pid, 'VmRSS');

    const end = await sendBulk(port, { bytes: MESSAGE_BYTES, unit: line });

    const growthMiB = ((await statusKiB(pid, 'VmHWM')) - baseline) / 1024;
    assert.match(end, /^250 2\.6\.0 Ok: queued as Q2$/, "the client got the back end's own 250");
    const got = backend.messages.at(-1);
    assert.ok(got);
    const header = BULK_HEADER.length;
    const received = got.size - header - MESSAGE_BYTES;
    assert.ok(received > 0 && received < 512, `the back end got the message and the edge's Received: field only (${received} bytes over)`);
    t.diagnostic(`edge peak RSS growth relaying ${MESSAGE_BYTES / MIB} MiB: ${growthMiB.toFixed(1)} MiB`);
    assert.ok(growthMiB < MAX_GROWTH_MIB, `edge peak RSS grew ${growthMiB.toFixed(1)} MiB relaying ${MESSAGE_BYTES / MIB} MiB (bound ${MAX_GROWTH_MIB})`);
  });
});
