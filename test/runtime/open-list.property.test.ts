/**
 * The open-connection list (src/runtime/open-list.ts): whatever order members come and go in, it
 * holds exactly the members added and not yet removed, a removal done twice changes nothing, and a
 * walk sees the members as they were when it began. And the reason it exists: members that come and
 * go through a list that has reached the old generation are not promoted by the young generation's
 * collections.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { OpenList, type OpenEntry } from '../../src/runtime/open-list.js';

type Op = { add: number } | { remove: number };

const ops = fc.array(fc.oneof(fc.record({ add: fc.nat(1000) }), fc.record({ remove: fc.nat(200) })), { maxLength: 300 });

function sorted(values: Iterable<number>): number[] {
  return [...values].sort((a, b) => a - b);
}

describe('OpenList', () => {
  it('holds what was added and not removed, whatever the order (a removal done twice changes nothing)', () => {
    fc.assert(
      fc.property(ops, (script: Op[]) => {
        const list = new OpenList<number>();
        const entries: OpenEntry<number>[] = [];
        const model = new Map<OpenEntry<number>, number>();
        for (const op of script) {
          if ('add' in op) {
            const entry = list.add(op.add);
            entries.push(entry);
            model.set(entry, op.add);
          } else if (entries.length > 0) {
            // Any entry ever given, removed already or not.
            const entry = entries[op.remove % entries.length] as OpenEntry<number>;
            list.remove(entry);
            model.delete(entry);
          }
          assert.equal(list.size, model.size);
        }
        assert.deepEqual(sorted(list), sorted(model.values()));
      }),
    );
  });

  it('walks the members as they were when the walk began, whatever the walk removes', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1, maxLength: 50 }), fc.nat(), (values, seed) => {
        const list = new OpenList<number>();
        const entries = values.map((v) => list.add(v));
        const seen: number[] = [];
        let i = 0;
        for (const v of list) {
          seen.push(v);
          // Each step removes some member, the one being visited or another.
          list.remove(entries[(seed + i++) % entries.length] as OpenEntry<number>);
        }
        assert.deepEqual(sorted(seen), sorted(values));
      }),
    );
  });

  it('members that come and go through an old list are not promoted by the young collections', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
    const list = new OpenList<{ payload: object[] }>();
    const live: OpenEntry<{ payload: object[] }>[] = [];
    const churn = (n: number): void => {
      // As connections come and go: about 100 open at a time, each holding ~4 KB.
      for (let i = 0; i < n; i++) {
        live.push(list.add({ payload: Array.from({ length: 200 }, (_, j) => ({ j })) }));
        if (live.length > 100) list.remove(live.shift() as OpenEntry<{ payload: object[] }>);
      }
    };
    churn(2000);
    gc({ type: 'major' });
    gc({ type: 'major' });
    const oldSpace = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')?.space_used_size ?? 0;
    const before = oldSpace();
    for (let round = 0; round < 10; round++) {
      churn(1000);
      gc({ type: 'minor' });
    }
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    // 10,000 members of ~4 KB went through; only the ~100 open at the end (and their entries) may have
    // been promoted. A Set in its place promoted 41 MB (Node 20).
    const promoted = oldSpace() - before;
    assert.ok(promoted < 4 * 1024 * 1024, `${(promoted / 1e6).toFixed(1)} MB promoted`);
  });
});
