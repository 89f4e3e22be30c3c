/**
 * What one cached DNSBL verdict costs: a cache hit in CachedDnsblLookup plus the rule match, after
 * a first real lookup against a loopback DNS server filled the cache. Median of several runs.
 */
import { pathToFileURL } from 'node:url';
import { DnsClient } from '../src/dns/client.js';
import { CachedDnsblLookup } from '../src/dns/dnsbl-lookup.js';
import { matchesRule } from '../src/dns/dnsbl-answer.js';
import { startDnsServer } from '../test/support/dns-server.js';

export interface DnsblCacheBench {
  /** Median cost of one verdict, in microseconds. */
  medianMicros: number;
  /** Each run's cost of one verdict, in microseconds. */
  runsMicros: number[];
  runs: number;
  iterations: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Measure `runs` x `iterations` cached verdicts; resolves with the numbers. */
export async function run(runs = 5, iterations = 200_000): Promise<DnsblCacheBench> {
  const server = await startDnsServer({ records: { '66.2.0.192.bl.bench': { A: ['127.0.0.2', '127.0.0.4'], TXT: ['listed'], ttl: 3600 } } });
  try {
    const lookup = new CachedDnsblLookup({ client: new DnsClient({ servers: [server.address], timeoutMs: 1000 }), cacheSize: 10_000 });
    const match = { mask: '0.0.0.4' } as const;
    const first = await lookup.lookup('bl.bench', '192.0.2.66');
    if (first.status !== 'listed') throw new Error(`bench zone answered ${first.status}`);
    const runsMicros: number[] = [];
    let hits = 0;
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) {
        const a = await lookup.lookup('bl.bench', '192.0.2.66');
        if (a.cached && matchesRule(a.codes, match) !== undefined) hits++;
      }
      runsMicros.push(Number(process.hrtime.bigint() - t0) / 1000 / iterations);
    }
    if (hits !== runs * iterations) throw new Error('a verdict missed the cache');
    return { medianMicros: median(runsMicros), runsMicros, runs, iterations };
  } finally {
    await server.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run();
  process.stdout.write(`dnsbl cached verdict: ${r.medianMicros.toFixed(2)} µs median (${r.runs} runs x ${r.iterations})\n`);
}
