/**
 * What step 9's scoring mode adds to a session: one SessionPolicy session (connect, MAIL FROM, one
 * RCPT TO) with three scoring lists, minus the same session with no DNSBL at all; beside it the
 * same three lists as first-match rules. Cached: the answers are in the lookup cache (a busy server's
 * usual case). Uncached: a fresh cache per session, so each session asks the loopback DNS server its
 * three zones (in parallel), which is the cost of a new client without the Internet's round trips.
 */
import { pathToFileURL } from 'node:url';
import { RulesSchema, type Rules } from '../src/config/schema.js';
import { DirectoryModel } from '../src/directory/directory-model.js';
import { DnsClient } from '../src/dns/client.js';
import { CachedDnsblLookup } from '../src/dns/dnsbl-lookup.js';
import { PolicyEngine } from '../src/policy/policy-engine.js';
import { startDnsServer } from '../test/support/dns-server.js';

export interface DnsblScoreBench {
  /** Median µs per session added by scoring, answers cached. */
  scoringCachedMicros: number;
  /** Median µs per session added by the same lists as first-match rules, answers cached. */
  firstMatchCachedMicros: number;
  /** Median µs per session added by scoring with a cold cache (three loopback DNS lookups in parallel). */
  scoringUncachedMicros: number;
  lists: number;
  runs: number;
  iterations: number;
  uncachedIterations: number;
}

const CLIENT = '192.0.2.66';
const ZONES = ['bl.bench', 'zen.bench', 'wl.bench'];

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function rules(connectionFilter: Record<string, unknown>, server: string): Rules {
  return RulesSchema.parse({
    hostname: 'mx.bench.test',
    acceptedDomains: ['example.test'],
    listeners: [{ name: 'bench', listen: '127.0.0.1:0' }],
    connectionFilter,
    dns: { servers: [server], timeoutMs: 1000 },
  });
}

const scoring = {
  scoring: {
    threshold: 10,
    allowThreshold: -5,
    lists: [
      { name: 'Block', zone: 'bl.bench', weight: 3 },
      { name: 'Zen', zone: 'zen.bench', weights: { '127.0.0.2': 4, '127.0.0.4': 2 } },
      { name: 'Welcome', zone: 'wl.bench', weight: -6 },
    ],
  },
};
const firstMatch = { rules: ZONES.map((zone) => ({ name: zone, zone, match: { codes: ['127.0.0.9'] } })) };

/** One engine per rule set; `fresh` gives each session a lookup with an empty cache. */
function engineFor(r: Rules, server: string, fresh: boolean): () => PolicyEngine {
  const client = new DnsClient({ servers: [server], timeoutMs: 1000 });
  const deps = () => ({
    dnsbl: new CachedDnsblLookup({ client, cacheSize: 1000 }),
    health: { isEnforced: () => true },
    directory: DirectoryModel.fromRules(r),
  });
  const shared = new PolicyEngine(r, deps());
  return fresh ? () => new PolicyEngine(r, deps()) : () => shared;
}

async function session(engine: PolicyEngine): Promise<void> {
  const s = engine.session('bench', CLIENT);
  s.connect();
  s.mailFrom('a@example.org');
  const v = await s.rcptTo('x@example.test');
  if (v.code === 0) throw new Error('no reply');
}

/** µs per session of each variant, run after run in turn so that all see the same machine load; medians. */
async function perSession(variants: (() => PolicyEngine)[], runs: number, iterations: number): Promise<number[]> {
  for (const next of variants) for (let i = 0; i < Math.min(iterations, 200); i++) await session(next());
  const each: number[][] = variants.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (const [v, next] of variants.entries()) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) await session(next());
      each[v]?.push(Number(process.hrtime.bigint() - t0) / 1000 / iterations);
    }
  }
  return each.map(median);
}

/** Measure the three costs; resolves with the numbers. */
export async function run(runs = 7, iterations = 20_000, uncachedIterations = 300): Promise<DnsblScoreBench> {
  const records = Object.fromEntries(ZONES.map((z) => [`66.2.0.192.${z}`, { A: ['127.0.0.2', '127.0.0.4'], ttl: 3600 }]));
  const server = await startDnsServer({ records });
  const at = server.address;
  try {
    const [base = 0, scored = 0, first = 0] = await perSession(
      [engineFor(rules({}, at), at, false), engineFor(rules(scoring, at), at, false), engineFor(rules(firstMatch, at), at, false)],
      runs,
      iterations,
    );
    const [coldBase = 0, cold = 0] = await perSession([engineFor(rules({}, at), at, true), engineFor(rules(scoring, at), at, true)], runs, uncachedIterations);
    return {
      scoringCachedMicros: scored - base,
      firstMatchCachedMicros: first - base,
      scoringUncachedMicros: cold - coldBase,
      lists: ZONES.length,
      runs,
      iterations,
      uncachedIterations,
    };
  } finally {
    await server.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run();
  process.stdout.write(
    `DNSBL scoring, ${r.lists} lists, per session: ${r.scoringCachedMicros.toFixed(2)} µs cached, ${r.scoringUncachedMicros.toFixed(1)} µs uncached; ` +
      `first-match, same lists, cached: ${r.firstMatchCachedMicros.toFixed(2)} µs\n`,
  );
}
