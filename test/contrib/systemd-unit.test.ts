/**
 * contrib/systemd/portcullis.service as systemd itself reads it (`systemd-analyze verify`, which
 * `.ci/run` installs with Debian's `systemd` package), and the settings that tie it to `serve`: the
 * reload and stop signals, a stop timeout above the drain grace, the sandbox, port 25 without root.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { RulesSchema } from '../../src/config/schema.js';
import { run, tempDir } from '../interop/peers.js';

const UNIT = 'contrib/systemd/portcullis.service';
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
/** The interpreter the unit names; the test runs verify with this machine's node in its place. */
const UNIT_NODE = '/usr/bin/node';

/** Every `Key=value` of a section, in order (a key may repeat). */
function section(text: string, name: string): [string, string][] {
  const out: [string, string][] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) current = header[1]!;
    else if (current === name) {
      const eq = line.indexOf('=');
      out.push([line.slice(0, eq), line.slice(eq + 1)]);
    }
  }
  return out;
}

function value(entries: [string, string][], key: string): string | undefined {
  return entries.filter(([k]) => k === key).at(-1)?.[1];
}

/** `systemd-analyze verify` on `text`, saved as portcullis.service with this machine's node in ExecStart. */
async function verify(text: string): Promise<{ code: number | null; output: string }> {
  const dir = await tempDir('portcullis-unit-');
  try {
    const file = path.join(dir, 'portcullis.service');
    // verify checks that ExecStart's program exists: the unit's own path where this machine has it.
    await fs.writeFile(file, text.replace(`ExecStart=${UNIT_NODE} `, `ExecStart=${process.execPath} `));
    const r = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', file], { timeoutMs: 30_000 });
    return { code: r.code, output: (r.stdout + r.stderr).trim() };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('contrib/systemd/portcullis.service', () => {
  it('passes systemd-analyze verify without a single warning', async () => {
    const text = await fs.readFile(UNIT, 'utf8');
    assert.ok(text.includes(`ExecStart=${UNIT_NODE} `), `ExecStart runs ${UNIT_NODE}`);
    assert.deepEqual(await verify(text), { code: 0, output: '' });
  });

  it('verify as this test runs it does catch a broken unit: a misspelt key, a missing program', async () => {
    const text = await fs.readFile(UNIT, 'utf8');
    const misspelt = await verify(text.replace('ProtectSystem=strict', 'ProtectSytem=strict'));
    assert.match(misspelt.output, /Unknown key 'ProtectSytem' in section \[Service\]/);
    const missing = await verify(text.replace(`ExecStart=${UNIT_NODE} `, 'ExecStart=/nonexistent/node '));
    assert.notEqual(missing.code, 0);
    assert.match(missing.output, /Command \/nonexistent\/node is not executable/);
  });

  it("runs serve from the package's entry point; SIGHUP reloads, SIGTERM stops after the drain grace", async () => {
    const service = section(await fs.readFile(UNIT, 'utf8'), 'Service');
    const pkg = JSON.parse(await fs.readFile('package.json', 'utf8')) as { bin: Record<string, string> };
    const [program, entry, command, option, config] = value(service, 'ExecStart')!.split(' ');
    assert.equal(program, UNIT_NODE);
    assert.equal(entry, `/opt/portcullis/${pkg.bin.portcullis}`);
    assert.deepEqual([command, option, config], ['serve', '--config', '/etc/portcullis/portcullis.yaml']);
    assert.equal(value(service, 'Type'), 'simple');
    assert.equal(value(service, 'ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(value(service, 'KillSignal'), 'SIGTERM');
    // serve waits shutdownGraceMs for sessions, then up to 2 s for the 421s to go out: systemd must
    // not SIGKILL it (and cut sessions without their 421) before that.
    const grace = RulesSchema.shape.shutdownGraceMs.parse(undefined) / 1000;
    const stop = Number(/^(\d+)s$/.exec(value(service, 'TimeoutStopSec') ?? '')?.[1]);
    assert.ok(stop >= grace + 5, `TimeoutStopSec ${stop} s leaves room after the ${grace} s grace`);
  });

  it('runs sandboxed as a dynamic user with CAP_NET_BIND_SERVICE as its only capability', async () => {
    const service = section(await fs.readFile(UNIT, 'utf8'), 'Service');
    const expected: Record<string, string> = {
      DynamicUser: 'yes',
      StateDirectory: 'portcullis',
      WorkingDirectory: '/var/lib/portcullis',
      AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
      CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      SystemCallFilter: '@system-service',
    };
    for (const [key, want] of Object.entries(expected)) assert.equal(value(service, key), want, key);
    // V8 compiles to memory it then executes: MemoryDenyWriteExecute would stop node at start.
    assert.equal(value(service, 'MemoryDenyWriteExecute'), undefined);
  });
});
