/**
 * What the realistic rule set of the peers benchmark (bench/peers.ts) costs a session in-process, apart
 * from the sockets: one SessionPolicy session as the edge drives it for one message on a new
 * connection (admit, HELO, MAIL FROM, RCPT TO, the header From:, close), with the edge's decision
 * observer (the verdict counter and the decision log line at level `warn`, where it writes nothing)
 * and the DNSBL runtime the server builds (cache, zone health, lookup metrics). No rules beside it;
 * the difference is the rules' cost. The three zones' answers are cached after the warm-up, as in the
 * peers benchmark, so this is a busy server's usual case. Measured in CPU time (user + system) of
 * this process.
 */
import { pathToFileURL } from 'node:url';
import { RulesSchema, type Rules } from '../src/config/schema.js';
import { DirectoryModel } from '../src/directory/directory-model.js';
import { openDnsbl, type DnsblRuntime } from '../src/dns/dnsbl-runtime.js';
import { recordDecision, type DecisionPlace } from '../src/edge/decision-observer.js';
import { createLogger } from '../src/observability/logger.js';
import { Metrics } from '../src/observability/metrics.js';
import { PolicyEngine } from '../src/policy/policy-engine.js';
import { systemClock } from '../src/runtime/clock.js';
import { startDnsServer } from '../test/support/dns-server.js';
import { REALISTIC_FILTERS, ZONES } from './peers.js';

export interface RulesCostBench {
  /** Median µs per session with no rules. */
  noRulesMicros: number;
  /** Median µs per session with the realistic rule set. */
  realisticMicros: number;
  /** The difference: what the rules add to a session. */
  addedMicros: number;
  runs: number;
  iterations: number;
}

const CLIENT = '127.0.0.1';

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The peers benchmark's rule sets (bench/peers.ts portcullisRules), without the back end and workers. */
function rules(realistic: boolean, dnsServer: string): Rules {
  const filters = realistic ? REALISTIC_FILTERS : {};
  return RulesSchema.parse({
    hostname: 'edge.bench.test',
    acceptedDomains: ['example.test'],
    listeners: [{ name: 'bench', listen: '127.0.0.1:0' }],
    ...filters,
    dns: { servers: [dnsServer], healthCheckIntervalSec: 0 },
  });
}

interface Variant {
  engine: PolicyEngine;
  metrics: Metrics;
  dnsbl: DnsblRuntime;
}

async function variant(r: Rules): Promise<Variant> {
  const metrics = new Metrics();
  const dnsbl = await openDnsbl(r, { clock: systemClock, onLookup: (zone, outcome, seconds, cached) => metrics.dnsblLookup(zone, outcome, seconds, cached) });
  const engine = new PolicyEngine(r, { dnsbl: dnsbl.lookup, health: dnsbl.health, directory: DirectoryModel.fromRules(r) });
  return { engine, metrics, dnsbl };
}

const logger = createLogger({ level: 'warn', destination: { write: () => true } });

let sessionNumber = 0;

async function session({ engine, metrics }: Variant): Promise<void> {
  const context: DecisionPlace = { session: `S${(sessionNumber += 1)}`, listener: 'bench', client: CLIENT, address: undefined };
  const services = { logger, metrics };
  const s = engine.session('bench', CLIENT, (v) => recordDecision(services, v, () => context));
  await s.admit();
  s.helo('bench.test', '127.0.0.1');
  context.address = 'load@bench.test';
  await s.mail('load@bench.test');
  context.address = s.recipient('user@example.test');
  const v = await s.rcptTo(context.address);
  if (v.code !== 250) throw new Error(`RCPT TO refused: ${v.code} ${v.text}`);
  context.address = undefined;
  s.headerFrom('load@bench.test');
  s.resetTransaction();
  await s.close();
}

/** CPU µs per session of each variant, run after run in turn so that all see the same machine load; medians. */
async function perSession(variants: Variant[], runs: number, iterations: number): Promise<number[]> {
  for (const v of variants) for (let i = 0; i < Math.min(iterations, 2000); i++) await session(v);
  const each: number[][] = variants.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (const [i, v] of variants.entries()) {
      // CPU time, not wall time: on a shared machine, the time other processes take is not this code's.
      const before = process.cpuUsage();
      for (let n = 0; n < iterations; n++) await session(v);
      const used = process.cpuUsage(before);
      each[i]?.push((used.user + used.system) / iterations);
    }
  }
  return each.map(median);
}

/** Measure both rule sets; resolves with the numbers. */
export async function run(runs = 7, iterations = 20_000): Promise<RulesCostBench> {
  // Each zone lists its 127.0.0.2 test point (healthy, so its rule is enforced); the client is not
  // listed, and the negative answer's SOA outlasts the run, so it is answered from the cache.
  const records = Object.fromEntries(ZONES.map((z) => [`2.0.0.127.${z}`, { A: ['127.0.0.2'], ttl: 3600 }]));
  const server = await startDnsServer({ records, soa: { ttl: 3600, minimum: 3600 } });
  const variants = [await variant(rules(false, server.address)), await variant(rules(true, server.address))];
  try {
    const [none = 0, realistic = 0] = await perSession(variants, runs, iterations);
    return { noRulesMicros: none, realisticMicros: realistic, addedMicros: realistic - none, runs, iterations };
  } finally {
    for (const v of variants) v.dnsbl.close();
    await server.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run(Number(process.env.BENCH_RUNS ?? 7), Number(process.env.BENCH_ITERATIONS ?? 20_000));
  process.stdout.write(
    `policy session (admit, HELO, MAIL, RCPT, header From:, close), median of ${r.runs} x ${r.iterations}: ` +
      `no rules ${r.noRulesMicros.toFixed(2)} µs, realistic rules ${r.realisticMicros.toFixed(2)} µs, added ${r.addedMicros.toFixed(2)} µs\n`,
  );
}
