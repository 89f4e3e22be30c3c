/** `portcullis check` shows rate limits (2.1, 7.1, 12.1) and greylisting (12.2) as a client new to the system meets them. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

test('check: the limits in the trace, and greylisting deferring a first-time triplet with 451 4.7.1 at step 12.2', async () => {
  const d = await mkdtemp(join(tmpdir(), 'portcullis-check-limits-'));
  const config = join(d, 'rules.yaml');
  await writeFile(
    config,
    `hostname: mx.example.test
acceptedDomains: [example.test]
listeners: [{ name: internet, listen: "127.0.0.1:2525" }]
connectionFilter: { exceptions: [postmaster@example.test] }
rateLimits: { client: { connectionsPerMinute: 10, messagesPerMinute: 10, recipientsPerMinute: 10 } }
greylisting: { delaySec: 300 }
state: { url: "redis://127.0.0.1:9" }
dns: { servers: ["127.0.0.1:9"], timeoutMs: 200 }
`,
  );
  const args = ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', config, '--ip', '198.51.100.20', '--from', 'a@example.org', '--to', 'alice@example.test', '--to', 'postmaster@example.test'];
  const { stdout } = await run('node', [...args, '--json']);
  const r = JSON.parse(stdout) as { connect: { code: number }; rcpt: { code: number; reply?: string; step: number; check: string }[]; trace: { step: number; check: string; outcome: string }[] };
  assert.equal(r.connect.code, 220);
  assert.deepEqual(
    r.rcpt.map((x) => [x.code, x.step, x.check, x.reply]),
    [
      [451, 12.2, 'greylisting', '451 4.7.1 Greylisted, please try again later'],
      [250, 10, 'exception recipients', undefined],
    ],
  );
  const steps = r.trace.filter((t) => !Number.isInteger(t.step)).map((t) => `${t.step} ${t.check}: ${t.outcome}`);
  assert.deepEqual(steps, [
    '2.1 rate limits (connections): within limits',
    '7.1 rate limits (messages): within limits',
    '12.1 rate limits (recipients): within limits',
    '12.2 greylisting: first sight of 198.51.100.0/24: deferred',
  ]);
  const text = (await run('node', args)).stdout;
  assert.match(text, /step 12\.2 {2}greylisting: first sight of 198\.51\.100\.0\/24: deferred\n {2}-> 451 4\.7\.1 Greylisted, please try again later/);
});
