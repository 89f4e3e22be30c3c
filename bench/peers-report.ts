/** The peers mode's entry: runs bench/peers.ts, prints its table, and files it under `peers` in bench/results.json. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { tempDir } from '../test/interop/peers.js';
import { peersTable, run } from './peers.js';

export async function runPeers(root: string): Promise<void> {
  const workDir = await tempDir('portcullis-bench-peers-');
  try {
    process.stdout.write('peers: Haraka, the direct path and Portcullis, interleaved ...\n');
    const measured = await run(root, workDir);
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const peers = { date: new Date().toISOString(), commit, node: process.version, cpus: os.cpus().length, loadAverage: os.loadavg(), ...measured };
    const file = path.join(root, 'bench/results.json');
    // The other modes' numbers stay: this run files its own under `peers`.
    const previous = JSON.parse(await fs.readFile(file, 'utf8').catch(() => '{}')) as Record<string, unknown>;
    await fs.writeFile(file, `${JSON.stringify({ ...previous, peers }, null, 2)}\n`);
    process.stdout.write(`\ncommit ${commit}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n${peersTable(peers)}\n\nwritten: bench/results.json (peers)\n`);
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}
