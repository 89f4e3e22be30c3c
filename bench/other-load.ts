/**
 * CPU time the machine spends outside this process and its descendants while a target is measured.
 * The development machine's two cores are shared with other sessions' builds and test runs, which
 * take no benchmark lock: measured during the peers benchmark, they took 0.35-1.1 cores in single
 * timed runs, and those runs read 20-40 % slow for reasons not the target's.
 */
import fs from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { pause } from '../test/interop/peers.js';
import { TICKS_PER_SECOND, treeCpuMs } from './peer-servers.js';

/** A reading of the machine's busy time and this process tree's share of it. */
export interface LoadMark {
  at: number;
  machineMs: number;
  ownMs: number;
}

/** Other load a timed run tolerates: 0.15 of a core, plus three clock ticks for the resolution of /proc. */
export const TOLERATED_CORES = 0.15;
const TOLERATED_TICKS = 3;

const ticksToMs = (ticks: number): number => (ticks * 1000) / TICKS_PER_SECOND;

/** user + nice + system + irq + softirq of every CPU, from /proc/stat (steal and idle are no one's). */
async function machineBusyMs(): Promise<number> {
  const text = await fs.readFile('/proc/stat', 'utf8');
  const [user, nice, system, , , irq, softirq] = (text.slice(0, text.indexOf('\n')).trim().split(/\s+/).slice(1)).map(Number) as number[];
  return ticksToMs((user as number) + (nice as number) + (system as number) + (irq as number) + (softirq as number));
}

/** CPU time of this process's children that have exited (smtp-source), which /proc keeps in its cutime and cstime. */
async function reapedChildrenMs(): Promise<number> {
  const text = await fs.readFile('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return ticksToMs(Number(fields[13]) + Number(fields[14]));
}

export async function markLoad(): Promise<LoadMark> {
  const [machineMs, treeMs, reapedMs] = await Promise.all([machineBusyMs(), treeCpuMs(process.pid), reapedChildrenMs()]);
  return { at: performance.now(), machineMs, ownMs: treeMs + reapedMs };
}

/** Cores, on average, that processes outside this run used between two marks. */
export function otherCores(from: LoadMark, to: LoadMark): number {
  return (to.machineMs - from.machineMs - (to.ownMs - from.ownMs)) / (to.at - from.at);
}

/** Whether other processes used more than the tolerated share of the machine between two marks. */
export function disturbed(from: LoadMark, to: LoadMark): boolean {
  const otherMs = to.machineMs - from.machineMs - (to.ownMs - from.ownMs);
  return otherMs > TOLERATED_CORES * (to.at - from.at) + ticksToMs(TOLERATED_TICKS);
}

/** Waits (at most `maxMs`) for half a second in which other processes stay under the tolerated share. */
export async function awaitQuiet(maxMs: number): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (performance.now() < deadline) {
    const from = await markLoad();
    await pause(500);
    if (!disturbed(from, await markLoad())) return;
  }
}
