/**
 * Exhaustion: what the edge spends on a message follows its bytes with a small constant, whatever the
 * bytes are. Each body kind goes through `portcullis serve` (its own process) to a real back end; the
 * message must arrive whole, the edge's peak RSS must stay far below the message, and its CPU time must
 * stay near plain text's. Before the framing fixes a body of bare LFs cost ~45 bytes of memory per
 * byte (8 MiB: hundreds of MiB, seconds of CPU), and a body of `..` lines one event-loop turn per line.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { BULK_HEADER, cpuSeconds, MIB, resetPeak, sendBulk, statusKiB } from '../support/bulk-message.js';
import { launch, startSmtpSink, tempDir, waitForPorts, writeRules, type Running, type SmtpSink } from '../interop/peers.js';

const BODY_BYTES = 8 * MIB;
/** Measured after the fix: a few MiB for every kind; before it, bare LF alone took hundreds. */
const MAX_GROWTH_MIB = 32;
/** Sessions relaying at once, and the bound on the edge's growth for all of them (before the fix: ~35 MiB per session). */
const CONCURRENT = 20;
const MAX_CONCURRENT_GROWTH_MIB = 64;

/** Each body kind: the unit its body repeats. */
const KINDS: { name: string; unit: string }[] = [
  { name: 'plain text', unit: `${'x'.repeat(76)}\r\n` },
  { name: 'bare LF', unit: '\n' },
  { name: 'bare CR', unit: '\r' },
  { name: 'dot-stuffed dot lines', unit: '..\r\n' },
  { name: 'one long line', unit: 'x' },
  { name: 'CR LF dot mix', unit: '\r.\n..\r\r\n.' },
];

/** The body the client meant, as a back end reads it: escape dots gone, every line end CRLF, the last line closed. */
function delivered(wire: string): string {
  const unstuffed = wire.replace(/(^|\n)\.\./g, '$1.');
  const crlf = unstuffed.replace(/\r\n|\r|\n/g, '\r\n');
  return crlf.endsWith('\r\n') ? crlf : `${crlf}\r\n`;
}

describe('hostile: every body kind relays byte for byte', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h.close());

  for (const kind of KINDS) {
    it(`${kind.name}: the back end gets the body the client meant, after the edge's Received: field`, async () => {
      const bytes = 256 * 1024;
      assert.match(await sendBulk(h.port(), { bytes, unit: Buffer.from(kind.unit, 'latin1') }), /^250 2\.6\.0 /);
      const got = h.backend.messages.at(-1)?.data.toString('latin1') ?? '';
      const wire = kind.unit.repeat(Math.ceil(bytes / kind.unit.length)).slice(0, bytes);
      const want = delivered(BULK_HEADER + wire + (wire.endsWith('\r\n') ? '' : '\r\n'));
      assert.match(got, /^Received: [^]*?\r\n(?![ \t])/);
      assert.ok(got.endsWith(want) && got.length - want.length < 512, `${kind.name}: ${got.length} bytes relayed, ${want.length} meant`);
    });
  }
});

describe('hostile: bodies that used to cost more than their bytes, through portcullis serve', () => {
  let backend: SmtpSink;
  let edge: Running;
  let port: number;
  let dir: string;
  let plainCpu = 0;

  before(async () => {
    // Postfix's smtp-sink reads as fast as loopback carries; smtp-server would make the back end the bottleneck.
    backend = await startSmtpSink({ dump: false });
    dir = await tempDir('portcullis-exhaustion-');
    const config = await writeRules(dir, {
      hostname: 'edge.test',
      acceptedDomains: ['example.com'],
      listeners: [{ name: 'main', listen: '127.0.0.1:0', limits: { maxMessageSize: 16 * MIB, maxSessionSize: 64 * MIB } }],
      dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
      backend: { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 30_000 },
      badmail: path.join(dir, 'badmail'),
      log: { level: 'warn' },
    });
    edge = launch(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', config]);
    [port] = (await waitForPorts(edge, 'tcp', 1, 30_000)) as [number];
    assert.match(await sendBulk(port, { bytes: 64 * 1024, unit: Buffer.from('warm up\r\n') }), /^250 /);
  });

  after(async () => {
    await edge.stop();
    await backend.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  for (const kind of KINDS) {
    it(`${kind.name}: ${BODY_BYTES / MIB} MiB relay with bounded memory and CPU near plain text's`, async (t) => {
      const pid = edge.child.pid as number;
      await resetPeak(pid);
      const baseline = await statusKiB(pid, 'VmRSS');
      const cpuBefore = await cpuSeconds(pid);

      const end = await sendBulk(port, { bytes: BODY_BYTES, unit: Buffer.from(kind.unit, 'latin1') }, 60_000);

      const cpu = (await cpuSeconds(pid)) - cpuBefore;
      const growthMiB = ((await statusKiB(pid, 'VmHWM')) - baseline) / 1024;
      t.diagnostic(`${kind.name}: peak RSS growth ${growthMiB.toFixed(1)} MiB, CPU ${cpu.toFixed(2)} s`);
      assert.match(end, /^250 /, "the client got the back end's 250");
      assert.ok(growthMiB < MAX_GROWTH_MIB, `edge peak RSS grew ${growthMiB.toFixed(1)} MiB for ${BODY_BYTES / MIB} MiB (bound ${MAX_GROWTH_MIB})`);
      if (kind.name === 'plain text') plainCpu = cpu;
      else assert.ok(cpu < 4 * plainCpu + 1, `CPU ${cpu.toFixed(2)} s against plain text's ${plainCpu.toFixed(2)} s`);
    });
  }

  it(`${CONCURRENT} clients at once, each sending 1 MiB of bare LF: the edge's peak RSS grows by a few chunks per session`, async (t) => {
    const pid = edge.child.pid as number;
    await resetPeak(pid);
    const baseline = await statusKiB(pid, 'VmRSS');
    const ends = await Promise.all(Array.from({ length: CONCURRENT }, () => sendBulk(port, { bytes: MIB, unit: Buffer.from('\n') }, 60_000)));
    const growthMiB = ((await statusKiB(pid, 'VmHWM')) - baseline) / 1024;
    t.diagnostic(`${CONCURRENT} x 1 MiB of bare LF: peak RSS growth ${growthMiB.toFixed(1)} MiB`);
    for (const end of ends) assert.match(end, /^250 /);
    assert.ok(growthMiB < MAX_CONCURRENT_GROWTH_MIB, `edge peak RSS grew ${growthMiB.toFixed(1)} MiB (bound ${MAX_CONCURRENT_GROWTH_MIB})`);
  });
});
