/**
 * What each limit adds to a session (connect, MAIL FROM, one RCPT TO, close), in microseconds: the
 * same sessions through the real SessionPolicy with one check switched on, minus the sessions with
 * none; on the memory store and on a real redis-server (loopback, sequential sessions). Greylisting
 * is measured uncached (a new triplet each session: get + setIfAbsent) and cached (a triplet that
 * passed before: two gets). Median of several runs.
 */
import { pathToFileURL } from 'node:url';
import { RulesSchema } from '../src/config/schema.js';
import { DirectoryModel } from '../src/directory/directory-model.js';
import { PolicyEngine } from '../src/policy/policy-engine.js';
import { openStateStore } from '../src/state/open-state-store.js';
import { MemoryStateStore } from '../src/state/memory-state-store.js';
import type { StateStore } from '../src/state/state-store.js';
import { startRedis } from '../test/support/redis-server.js';

type Check = 'backPressure' | 'rateLimits' | 'greylistingUncached' | 'greylistingCached';

export interface LimitsCostBench {
  /** µs per session added by each check, on the memory store. */
  memory: Record<Check, number>;
  /** µs per session added by each check, on Redis (back pressure never touches the store). */
  redis: Record<Exclude<Check, 'backPressure'>, number>;
  /** µs per session with no limit, the base both subtract. */
  baseMicros: number;
  sessions: { memory: number; redis: number };
  runs: number;
}

const IGNORE = { rateLimited: () => undefined, greylisting: () => undefined, backPressure: () => undefined };

function rules(extra: Record<string, unknown>) {
  return RulesSchema.parse({
    hostname: 'mx.bench.test',
    acceptedDomains: ['example.test'],
    listeners: [{ name: 'bench', listen: '127.0.0.1:0' }],
    ...extra,
  });
}

const CONFIGS: Record<Check | 'none', Record<string, unknown>> = {
  none: {},
  backPressure: { backPressure: { maxEventLoopLagMs: 1000, maxRssMb: 1_000_000 } },
  rateLimits: {
    rateLimits: {
      client: { connectionsPerMinute: 1e9, concurrentConnections: 1e9, messagesPerMinute: 1e9, recipientsPerMinute: 1e9 },
      network: { connectionsPerMinute: 1e9, concurrentConnections: 1e9, messagesPerMinute: 1e9, recipientsPerMinute: 1e9 },
      sender: { messagesPerMinute: 1e9, recipientsPerMinute: 1e9 },
    },
  },
  greylistingUncached: { greylisting: { delaySec: 300 } },
  greylistingCached: { greylisting: { delaySec: 0, autoAllowAfter: 1e9 } },
};

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** µs per session: `sessions` sequential sessions from 256 client addresses. */
async function perSession(check: Check | 'none', store: StateStore, sessions: number): Promise<number> {
  const r = rules(CONFIGS[check]);
  const engine = new PolicyEngine(r, {
    dnsbl: { lookup: () => Promise.reject(new Error('no DNSBL rules in the bench')) },
    health: { isEnforced: () => true },
    directory: DirectoryModel.fromRules(r),
    limits: { store, clock: { now: () => Date.now() }, probe: { sample: () => ({ eventLoopLagMs: 1, rssMb: 100 }), stop: () => undefined }, events: IGNORE },
  });
  const cached = check === 'greylistingCached';
  const one = async (i: number): Promise<void> => {
    const s = engine.session('bench', `198.51.${(i >> 8) & 255}.${i & 255}`);
    await s.admit();
    await s.mail(cached ? 'known@example.org' : `s${i}@example.org`);
    await s.rcptTo('alice@example.test');
    await s.close();
  };
  // Cached: every triplet the timed sessions use has passed once (delay 0: the second sight passes).
  if (cached) for (let i = 0; i < 2 * 256; i++) await one(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < sessions; i++) await one(i);
  return Number(process.hrtime.bigint() - t0) / 1000 / sessions;
}

/** Runs are interleaved (every check once per round) so that a busy moment of the machine hits them all alike. */
async function costs(checks: Check[], store: () => StateStore, sessions: number, runs: number): Promise<{ base: number; added: Record<string, number> }> {
  const times = new Map<Check | 'none', number[]>();
  for (let r = 0; r < runs; r++) {
    for (const c of ['none', ...checks] as const) times.set(c, [...(times.get(c) ?? []), await perSession(c, store(), sessions)]);
  }
  const base = median(times.get('none') ?? []);
  const added = Object.fromEntries(checks.map((c) => [c, Math.round((median(times.get(c) ?? []) - base) * 10) / 10]));
  return { base, added };
}

export async function run(runs = 5, memorySessions = 20_000, redisSessions = 2000): Promise<LimitsCostBench> {
  const memory = await costs(['backPressure', 'rateLimits', 'greylistingUncached', 'greylistingCached'], () => new MemoryStateStore(), memorySessions, runs);
  const redis = await startRedis();
  try {
    const stores: StateStore[] = [];
    const shared = (): StateStore => {
      const s = openStateStore({ url: redis.url, timeoutMs: 2000 }, { now: () => Date.now() }, { onState: () => undefined, onError: () => undefined });
      stores.push(s);
      return s;
    };
    // Connect once before timing: the first command of a store waits for its connection.
    await shared().get('warm-up');
    const onRedis = await costs(['rateLimits', 'greylistingUncached', 'greylistingCached'], shared, redisSessions, runs);
    await Promise.all(stores.map((s) => s.close()));
    return {
      memory: memory.added as LimitsCostBench['memory'],
      redis: onRedis.added as LimitsCostBench['redis'],
      baseMicros: Math.round(memory.base * 10) / 10,
      sessions: { memory: memorySessions, redis: redisSessions },
      runs,
    };
  } finally {
    await redis.close();
  }
}

/** The per-check rows of the bench table: step, reply, and µs per session on each store. */
export function limitsTable(r: LimitsCostBench): string {
  const rows: [string, string, string, string][] = [
    ['back pressure (1.2)', '421 4.3.2 / 452 4.3.1', `${r.memory.backPressure}`, '—'],
    ['rate limits, all ten (2.1, 7.1, 12.1)', '421 4.7.0 / 451 4.7.1', `${r.memory.rateLimits}`, `${r.redis.rateLimits}`],
    ['greylisting, new triplet (12.2)', '451 4.7.1', `${r.memory.greylistingUncached}`, `${r.redis.greylistingUncached}`],
    ['greylisting, known triplet (12.2)', '—', `${r.memory.greylistingCached}`, `${r.redis.greylistingCached}`],
  ];
  const head = `limit (step)                            reply                   µs/session memory   µs/session Redis   (base session ${r.baseMicros} µs, median of ${r.runs})`;
  return [head, ...rows.map(([a, b, c, d]) => `${a.padEnd(40)}${b.padEnd(24)}${c.padStart(17)}${d.padStart(19)}`)].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.stdout.write(`${limitsTable(await run())}\n`);
}
