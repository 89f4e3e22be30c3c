/**
 * Replay speed and record size: writes a 100,000-session record log the way `serve` does (each
 * session run through the engine with recording ports, its record handed to the RecordLog), then
 * replays it twice through the CLI's replay loop — with the live rule set (which must report no
 * change) and with a candidate that enforces the report-only list and drops the exception
 * recipient — and reports
 * sessions per second and bytes per session.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RulesSchema, type Rules } from '../src/config/schema.js';
import { DirectoryModel } from '../src/directory/directory-model.js';
import type { DnsblAnswer } from '../src/dns/dnsbl-answer.js';
import { SessionRecorder } from '../src/edge/session-recorder.js';
import { RecordLog } from '../src/observability/record-log.js';
import { PolicyEngine } from '../src/policy/policy-engine.js';
import { replayLog } from '../src/cli/records/replay-log.js';

export interface ReplayBench {
  sessions: number;
  recordBytes: number;
  bytesPerSession: number;
  /** Seconds to write the log (engine + recording + serialising), for scale. */
  writeSeconds: number;
  /** Sessions per second replayed with the live rule set (no change reported). */
  liveSessionsPerSecond: number;
  /** Sessions per second replayed with the candidate, and what it changed. */
  candidateSessionsPerSecond: number;
  candidateChangedRecipients: number;
}

const USERS = Array.from({ length: 200 }, (_, i) => `user${i}@example.test`);

function rules(candidate: boolean): Rules {
  return RulesSchema.parse({
    hostname: 'edge.bench.test',
    acceptedDomains: ['example.test'],
    listeners: [{ name: 'bench', listen: '127.0.0.1:0' }],
    connectionFilter: {
      exceptions: candidate ? [] : ['postmaster@example.test'],
      rules: [
        { name: 'Bench BL', zone: 'bl.bench.test' },
        { name: 'Trial BL', zone: 'trial.bench.test', reportOnly: !candidate },
      ],
    },
    senderFilter: { blocked: ['*@spam.bench.test'] },
    recipientFilter: { rejectUnknown: true },
    directory: { addresses: [...USERS, 'postmaster@example.test'] },
    dns: { servers: ['127.0.0.1:9'] },
  });
}

/** Deterministic answers: about one client in ten on each list. */
function answer(zone: string, ip: string): DnsblAnswer {
  const last = Number(ip.split('.').pop());
  const listed = zone.startsWith('bl.') ? last % 10 === 0 : last % 7 === 0;
  const queryName = `${ip.split('.').reverse().join('.')}.${zone}`;
  return listed
    ? { status: 'listed', queryName, codes: ['127.0.0.2'], errorCodes: [], txt: 'listed for benchmarking', cached: false, ttlSec: 300 }
    : { status: 'not-listed', queryName, codes: [], errorCodes: [], cached: false, ttlSec: 60 };
}

async function writeLog(file: string, sessions: number): Promise<void> {
  const live = rules(false);
  const engine = new PolicyEngine(live, {
    dnsbl: { lookup: async (zone, ip) => answer(zone, ip) },
    health: { isEnforced: () => true },
    directory: DirectoryModel.fromRules(live),
  });
  const log = await RecordLog.open({ path: file, keepDays: 1, maxBytes: 1 << 30, hashLocalParts: false }, { count: () => undefined, warn: (d) => process.stderr.write(`${d}\n`), maxQueued: 1_000_000 });
  for (let i = 0; i < sessions; i++) {
    const ip = `198.51.${(i >> 8) & 255}.${i & 255}`;
    const recorder = new SessionRecorder(engine, log);
    const policy = engine.session('bench', ip, (v) => recorder.observe(v), recorder.deps);
    if (policy.connect().action !== 'accept') continue;
    policy.helo(`host${i}.bench.test`);
    const mail = policy.mailFrom(i % 13 === 0 ? `x${i}@spam.bench.test` : `sender${i}@remote.test`);
    if (mail.action === 'accept') {
      let accepted = 0;
      for (let r = 0; r < 1 + (i % 3); r++) {
        const v = await policy.rcptTo(r === 2 ? 'postmaster@example.test' : (USERS[(i * 7 + r) % 240] ?? `nobody${i}@example.test`));
        if (v.action === 'accept') accepted++;
      }
      if (accepted > 0 && policy.headerFrom(`sender${i}@remote.test`).action === 'relay') recorder.backendReplied(250);
    }
    recorder.close(policy, `bench${String(i).padStart(11, '0')}`, 'bench');
    if (i % 1000 === 999) await log.flush();
  }
  await log.flush();
}

export async function run(sessions = 100_000): Promise<ReplayBench> {
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-bench-replay-'));
  try {
    const file = path.join(dir, 'records.jsonl');
    let t = process.hrtime.bigint();
    await writeLog(file, sessions);
    const writeSeconds = Number(process.hrtime.bigint() - t) / 1e9;
    const recordBytes = (await stat(file)).size;
    const replay = async (candidate: boolean) => {
      const r = rules(candidate);
      const engine = new PolicyEngine(r, { dnsbl: { lookup: () => Promise.reject(new Error('replay asks no DNS')) }, health: { isEnforced: () => true }, directory: DirectoryModel.fromRules(r) });
      t = process.hrtime.bigint();
      const report = await replayLog(file, engine);
      return { report, seconds: Number(process.hrtime.bigint() - t) / 1e9 };
    };
    const live = await replay(false);
    const changed = Object.values(live.report.changedRecipients).reduce((a, b) => a + b, 0);
    if (changed !== 0 || live.report.sessions !== sessions) throw new Error(`the live rule set replayed with ${changed} change(s) over ${live.report.sessions} session(s)`);
    const candidate = await replay(true);
    return {
      sessions,
      recordBytes,
      bytesPerSession: Math.round(recordBytes / sessions),
      writeSeconds: Math.round(writeSeconds * 100) / 100,
      liveSessionsPerSecond: Math.round(sessions / live.seconds),
      candidateSessionsPerSecond: Math.round(sessions / candidate.seconds),
      candidateChangedRecipients: Object.values(candidate.report.changedRecipients).reduce((a, b) => a + b, 0),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run(Number(process.env.BENCH_REPLAY_SESSIONS ?? 100_000));
  process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
}
