import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/config/config-error.js';
import { RulesStore } from '../../src/config/rules-store.js';
import type { Rules } from '../../src/config/schema.js';
import { DENY_TXT, folder, GOOD } from './fixture.js';

test('a reload with a broken rule set keeps the old one in force; a good one replaces it', async () => {
  const d = await folder({ 'rules.yaml': GOOD, 'lists/deny.txt': DENY_TXT });
  const store = await RulesStore.open(join(d, 'rules.yaml'));
  const seen: string[] = [];
  store.onChange((r) => seen.push(r.hostname));
  const before = store.current();

  await writeFile(join(d, 'rules.yaml'), GOOD.replace('mx.example.test', 'mx2.example.test').replace('192.0.2.99', 'nonsense'));
  const bad = await store.reload();
  assert.equal(bad.ok, false);
  assert.ok(!bad.ok && bad.error instanceof ConfigError);
  assert.match(bad.ok ? '' : bad.error.message, /rules\.yaml:6: listeners\[0\]\.ipRestrictions\.except\[0\]: 'nonsense'/);
  assert.equal(store.current(), before, 'the very same rule set object stays in force');
  assert.deepEqual(seen, []);

  await writeFile(join(d, 'lists/deny.txt'), 'bogus\n');
  await writeFile(join(d, 'rules.yaml'), GOOD);
  const badList = await store.reload();
  assert.match(badList.ok ? '' : badList.error.message, /lists\/deny\.txt:1: /, 'a broken list file is refused too');
  assert.equal(store.current(), before);

  await writeFile(join(d, 'lists/deny.txt'), DENY_TXT);
  await writeFile(join(d, 'rules.yaml'), GOOD.replace('mx.example.test', 'mx2.example.test'));
  const good = await store.reload();
  assert.equal(good.ok, true);
  assert.equal(store.current().hostname, 'mx2.example.test');
  assert.deepEqual(seen, ['mx2.example.test']);
});

test('a list file edited alone takes effect on reload; a listener can unsubscribe', async () => {
  const d = await folder({ 'rules.yaml': GOOD, 'lists/deny.txt': DENY_TXT });
  const store = await RulesStore.open(join(d, 'rules.yaml'));
  const seen: Rules[] = [];
  const stop = store.onChange((r) => seen.push(r));
  await writeFile(join(d, 'lists/deny.txt'), '203.0.113.9\n');
  assert.equal((await store.reload()).ok, true);
  assert.deepEqual(store.current().connectionFilter.deny, ['192.0.2.0/24', '203.0.113.9']);
  stop();
  assert.equal((await store.reload()).ok, true);
  assert.equal(seen.length, 1);
});

test('concurrent reloads run one after another: the second reads the file as the first left it', async () => {
  const d = await folder({ 'rules.yaml': GOOD, 'lists/deny.txt': DENY_TXT });
  const store = await RulesStore.open(join(d, 'rules.yaml'));
  const order: string[] = [];
  store.onChange((r) => {
    order.push(r.hostname);
    // Edit the file the moment the first reload has taken effect. Queued, the second reload has not
    // read anything yet and so sees this edit; run concurrently, both would have read 'first'.
    if (r.hostname === 'first.example.test') writeFileSync(join(d, 'rules.yaml'), GOOD.replace('mx.example.test', 'second.example.test'));
  });
  await writeFile(join(d, 'rules.yaml'), GOOD.replace('mx.example.test', 'first.example.test'));
  const first = store.reload();
  const second = store.reload();
  const [r1, r2] = await Promise.all([first, second]);
  assert.equal(r1.ok && r1.rules.hostname, 'first.example.test');
  assert.equal(r2.ok && r2.rules.hostname, 'second.example.test');
  assert.deepEqual(order, ['first.example.test', 'second.example.test']);
  assert.equal(store.current().hostname, 'second.example.test', 'the later reload is the one in force');
});

test('open refuses a broken rule set with a ConfigError', async () => {
  const d = await folder({ 'rules.yaml': GOOD.replace('hostname: mx.example.test\n', '') });
  await assert.rejects(RulesStore.open(join(d, 'rules.yaml')), (e: unknown) => e instanceof ConfigError && /hostname: required key is missing/.test(e.message));
});
