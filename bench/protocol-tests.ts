/**
 * What each protocol test at the door (docs/protocol-tests.md) costs per session, in microseconds of
 * the edge's own work, cached and uncached where a cache applies:
 * - pre-greeting test: the StateStore read, the pass written, the verdict (the pause itself is wall
 *   time the client waits, `greetPauseMs`, not work); cached = a client that passed before;
 * - unauthorised pipelining: the guard's bookkeeping over a whole pipelined transaction;
 * - HELO syntax + notOurs: `helo()` with both checks, against `helo()` without;
 * - fcrdns: PTR then A against a DNS server on loopback (it has no cache of its own: the resolver's
 *   cache is what makes a repeat cheap, so one figure, the uncached round trips);
 * and, end to end, sessions/second over loopback through the in-process edge with the pipelining
 * test and both HELO name checks on, beside none.
 */
import { pathToFileURL } from 'node:url';
import { RulesSchema, type Rules } from '../src/config/schema.js';
import { DnsClient } from '../src/dns/client.js';
import { DnsHostNameLookup } from '../src/dns/forward-confirmed.js';
import { DirectoryModel } from '../src/directory/directory-model.js';
import { PipeliningGuard } from '../src/edge/pipelining-guard.js';
import { passedKey } from '../src/edge/pre-greeting.js';
import { PolicyEngine } from '../src/policy/policy-engine.js';
import { MemoryStateStore } from '../src/state/memory-state-store.js';
import { startDnsServer } from '../test/support/dns-server.js';
import { startHarness } from '../test/support/edge-harness.js';

export interface ProtocolTestsBench {
  preGreetingUncachedUs: number;
  preGreetingCachedUs: number;
  pipeliningUs: number;
  heloNameChecksUs: number;
  fcrdnsUncachedUs: number;
  sessionsPerSecondNoTests: number;
  sessionsPerSecondWithTests: number;
  sessions: number;
}

/** Microseconds per call of `fn`, the median of 5 rounds of `n` calls. */
async function perCall(n: number, fn: (i: number) => unknown): Promise<number> {
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn(i);
    rounds.push(Number(process.hrtime.bigint() - start) / 1e3 / n);
  }
  return rounds.sort((a, b) => a - b)[2] as number;
}

function rules(listener: Record<string, unknown>): Rules {
  return RulesSchema.parse({
    hostname: 'edge.bench.test',
    acceptedDomains: ['example.test'],
    listeners: [{ name: 'bench', listen: '127.0.0.1:2525', ...listener }],
  });
}

function engineOf(r: Rules): PolicyEngine {
  const unused = { lookup: () => Promise.reject(new Error('no DNSBL in this bench')) };
  const health = { isEnforced: () => true, state: () => 'healthy' } as unknown as ConstructorParameters<typeof PolicyEngine>[1]['health'];
  return new PolicyEngine(r, { dnsbl: unused as unknown as ConstructorParameters<typeof PolicyEngine>[1]['dnsbl'], health, directory: DirectoryModel.fromRules(r) });
}

async function preGreeting(): Promise<{ uncached: number; cached: number }> {
  const store = new MemoryStateStore();
  const engine = engineOf(rules({ protocolTests: { greetPauseMs: 300 } }));
  // One session for all calls: what a session costs anyway is not the test's.
  const session = engine.session('bench', '192.0.2.1');
  const once = async (ip: string): Promise<void> => {
    session.trace.length = 0;
    const key = passedKey(ip);
    if ((await store.get(key)) !== undefined) return void session.preGreeting('cached', 300);
    await store.set(key, '1', 86_400_000);
    session.preGreeting('pass', 300);
  };
  const ip = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const uncached = await perCall(20_000, (i) => once(ip(i + 1_000_000 * Math.random())));
  const cached = await perCall(20_000, (i) => once(ip(i % 1000)));
  return { uncached, cached };
}

function pipelining(): Promise<number> {
  const commands = ['EHLO client.example', 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.test>', 'DATA', 'QUIT'];
  return perCall(50_000, () => {
    const g = new PipeliningGuard();
    g.replied(220);
    for (const c of commands) {
      g.received(c.length + 2, false);
      g.command(c);
      g.replied(c === 'DATA' ? 354 : 250);
      if (c === 'DATA') g.received(2048, true);
    }
    return g.violated;
  });
}

async function heloNameChecks(): Promise<number> {
  const plain = engineOf(rules({}));
  const checked = engineOf(rules({ heloChecks: { syntax: true, notOurs: true } }));
  const base = await perCall(50_000, () => plain.session('bench', '192.0.2.1').helo('mail.client.example', '127.0.0.1'));
  const with_ = await perCall(50_000, () => checked.session('bench', '192.0.2.1').helo('mail.client.example', '127.0.0.1'));
  return Math.max(0, with_ - base);
}

async function fcrdns(): Promise<number> {
  const records: Record<string, { PTR?: string[]; A?: string[] }> = {};
  for (let i = 0; i < 256; i++) {
    records[`${i}.2.0.192.in-addr.arpa`] = { PTR: [`host${i}.client.test`] };
    records[`host${i}.client.test`] = { A: [`192.0.2.${i}`] };
  }
  const dns = await startDnsServer({ records });
  try {
    const lookup = new DnsHostNameLookup(new DnsClient({ servers: [dns.address], timeoutMs: 2000 }));
    return await perCall(200, async (i) => {
      const r = await lookup.forwardConfirmed(`192.0.2.${i % 256}`);
      if (r.outcome !== 'confirmed') throw new Error(`fcrdns bench: ${JSON.stringify(r)}`);
    });
  } finally {
    await dns.close();
  }
}

/**
 * Sessions/second, one after another on loopback: greeting, EHLO, MAIL FROM (where the HELO checks
 * run), QUIT. The back end is a closed port, so that its own greeting delay is not what is measured:
 * MAIL FROM gets the edge's 451 at once.
 */
async function sessionsPerSecond(listener: Record<string, unknown>, sessions: number): Promise<number> {
  const h = await startHarness((r) => {
    r.listeners = [{ name: 'main', listen: '127.0.0.1:0', limits: { maxConnectionsPerClient: 1000 }, ...listener }];
    r.backend = { url: 'smtp://127.0.0.1:1', timeoutMs: 2000 };
  });
  try {
    const start = process.hrtime.bigint();
    for (let i = 0; i < sessions; i++) {
      const c = await h.connect();
      await c.read();
      await c.cmd('EHLO mail.client.example');
      const r = await c.cmd('MAIL FROM:<a@example.org>');
      if (r.code !== 451) throw new Error(`session bench: ${r.line}`);
      c.quit();
    }
    return sessions / (Number(process.hrtime.bigint() - start) / 1e9);
  } finally {
    await h.close();
  }
}

export async function run(sessions = 500): Promise<ProtocolTestsBench> {
  const pg = await preGreeting();
  const tests = { protocolTests: { pipelining: true }, heloChecks: { syntax: true, notOurs: true } };
  return {
    preGreetingUncachedUs: pg.uncached,
    preGreetingCachedUs: pg.cached,
    pipeliningUs: await pipelining(),
    heloNameChecksUs: await heloNameChecks(),
    fcrdnsUncachedUs: await fcrdns(),
    sessionsPerSecondNoTests: await sessionsPerSecond({}, sessions),
    sessionsPerSecondWithTests: await sessionsPerSecond(tests, sessions),
    sessions,
  };
}

/** The rows bench/run.ts prints. */
export function protocolTestsRows(r: ProtocolTestsBench): [string, string][] {
  const us = (n: number): string => `${n.toFixed(1)} µs/session`;
  return [
    ['protocol tests: pre-greeting (step 1), uncached (plus the pause itself, wall time)', us(r.preGreetingUncachedUs)],
    ['protocol tests: pre-greeting (step 1), cached pass', us(r.preGreetingCachedUs)],
    ['protocol tests: unauthorised pipelining (step 1.1), whole transaction', us(r.pipeliningUs)],
    ['protocol tests: HELO syntax + notOurs (step 3)', us(r.heloNameChecksUs)],
    ['protocol tests: HELO fcrdns (step 3), PTR + A on loopback, uncached', us(r.fcrdnsUncachedUs)],
    [`protocol tests: sessions/s in-process, none / pipelining+HELO name checks (${r.sessions} sessions)`, `${r.sessionsPerSecondNoTests.toFixed(0)} / ${r.sessionsPerSecondWithTests.toFixed(0)}`],
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run();
  for (const [k, v] of protocolTestsRows(r)) process.stdout.write(`${k}  ${v}\n`);
}
