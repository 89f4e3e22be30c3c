/**
 * What sender authentication costs per message: SPF for the envelope sender (a record with an
 * include, as most are) plus DKIM (a 2048-bit RSA signature over a 10 KB message), ARC and DMARC, with
 * every DNS answer already cached, and with none cached (a fresh resolver per message, so each
 * lookup goes to the loopback DNS server). Median of several runs.
 */
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { CachedAuthResolver } from '../src/auth/auth-resolver.js';
import { MailauthSenderAuth } from '../src/auth/mailauth-sender-auth.js';
import { DnsClient } from '../src/dns/client.js';
import { startDnsServer } from '../test/support/dns-server.js';
import { signed, signingKey } from '../test/support/sender-auth.js';

export interface SenderAuthBench {
  /** Median milliseconds for SPF + DKIM + ARC + DMARC on one message, answers cached / not. */
  cachedMs: number;
  uncachedMs: number;
  /** DNS queries one uncached message costs. */
  queriesPerMessage: number;
  runs: number;
  messages: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export async function run(runs = 5, messages = 100): Promise<SenderAuthBench> {
  const key = signingKey();
  const server = await startDnsServer({
    ttl: 3600,
    records: {
      'sender.bench': { TXT: ['v=spf1 include:_spf.sender.bench -all'] },
      '_spf.sender.bench': { TXT: ['v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 -all'] },
      'sel._domainkey.sender.bench': { TXT: [key.record] },
      '_dmarc.sender.bench': { TXT: ['v=DMARC1; p=reject'] },
    },
  });
  try {
    const body = Array.from({ length: 130 }, (_, i) => `line ${i} of a message of about ten kilobytes ${'x'.repeat(30)}\r\n`).join('');
    const message = Buffer.from(await signed(`From: <a@sender.bench>\r\nTo: <b@example.test>\r\nSubject: bench\r\n\r\n${body}`, 'sender.bench', key));
    const client = new DnsClient({ servers: [server.address], timeoutMs: 1000 });
    const fresh = (): { auth: MailauthSenderAuth; resolver: CachedAuthResolver } => {
      const resolver = new CachedAuthResolver({ client, cacheSize: 1000 });
      return { auth: new MailauthSenderAuth({ resolver, authservId: 'mx.bench', timeoutMs: 5000 }), resolver };
    };
    const one = async (auth: MailauthSenderAuth): Promise<void> => {
      const spf = await auth.spf({ sender: 'a@sender.bench', ip: '192.0.2.7', helo: 'mta.sender.bench' });
      const r = await auth.message({ message: Readable.from([message]), sender: 'a@sender.bench', ip: '192.0.2.7', helo: 'mta.sender.bench', spf });
      if (spf.result !== 'pass' || r.dmarc?.result !== 'pass') throw new Error(`bench message did not pass: spf=${spf.result} dmarc=${r.dmarc?.result}`);
    };
    const cached = fresh();
    await one(cached.auth);
    const cachedRuns: number[] = [];
    const uncachedRuns: number[] = [];
    let queries = 0;
    for (let r = 0; r < runs; r++) {
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < messages; i++) await one(cached.auth);
      cachedRuns.push(Number(process.hrtime.bigint() - t0) / 1e6 / messages);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < messages; i++) {
        const f = fresh();
        await one(f.auth);
        queries += f.resolver.queries;
      }
      uncachedRuns.push(Number(process.hrtime.bigint() - t0) / 1e6 / messages);
    }
    return { cachedMs: median(cachedRuns), uncachedMs: median(uncachedRuns), queriesPerMessage: queries / (runs * messages), runs, messages };
  } finally {
    await server.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run();
  process.stdout.write(`sender auth per message: ${r.cachedMs.toFixed(2)} ms cached, ${r.uncachedMs.toFixed(2)} ms uncached (${r.queriesPerMessage} DNS queries), median of ${r.runs} x ${r.messages}\n`);
}
