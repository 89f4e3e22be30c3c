/** The peers benchmark's judgement of other load on the machine (bench/other-load.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { disturbed, markLoad, otherCores, type LoadMark } from '../../bench/other-load.js';

const mark = (at: number, machineMs: number, ownMs: number): LoadMark => ({ at, machineMs, ownMs });

test('other load: the machine busy time beyond this process tree, in cores', () => {
  // One second: the machine was busy 1,500 ms, this tree (target, client, sink) 1,200 ms of it.
  const from = mark(0, 10_000, 4_000);
  const to = mark(1_000, 11_500, 5_200);
  assert.equal(otherCores(from, to), 0.3);
  assert.equal(disturbed(from, to), true);
});

test('other load: up to 0.15 cores, plus three clock ticks for /proc, is tolerated', () => {
  assert.equal(disturbed(mark(0, 0, 0), mark(1_000, 1_180, 1_000)), false);
  assert.equal(disturbed(mark(0, 0, 0), mark(1_000, 1_181, 1_000)), true);
  // A short run (the serial mode's 70 ms) is judged mostly by the ticks' allowance.
  assert.equal(disturbed(mark(0, 0, 0), mark(70, 40, 0)), false);
});

test('other load: a mark of this process counts its own CPU time as its own', async () => {
  const from = await markLoad();
  const start = process.cpuUsage();
  while (process.cpuUsage(start).user < 300_000);
  const to = await markLoad();
  // /proc counts in 10 ms ticks.
  assert.ok(to.ownMs - from.ownMs >= 270, `own CPU ${to.ownMs - from.ownMs} ms over 300 ms of a busy loop`);
});
