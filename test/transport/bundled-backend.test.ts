import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RulesSchema } from '../../src/config/schema.js';
import { withBundledBackend } from '../../src/transport/bundled-backend.js';

const base = { hostname: 'mx.example.test', acceptedDomains: ['example.test'], listeners: [{ name: 'internet', listen: '127.0.0.1:0' }] };

test('the bundled engine as back end gets the schema\'s backend defaults, whether backend is absent or "bundled"', () => {
  const engine = { address: { host: '::1', port: 2526 } };
  const written = RulesSchema.parse({ ...base, backend: { url: 'smtp://[::1]:2526' } }).backend;
  assert.deepEqual(withBundledBackend(RulesSchema.parse(base), engine).backend, written);
  assert.deepEqual(withBundledBackend(RulesSchema.parse({ ...base, backend: { url: 'bundled' } }), engine).backend, written);
  const tuned = withBundledBackend(RulesSchema.parse({ ...base, backend: { url: 'bundled', timeoutMs: 900 } }), engine).backend;
  assert.deepEqual(tuned, { ...written, timeoutMs: 900 });
});

test('a rule set naming its own back end is left as it is', () => {
  const rules = RulesSchema.parse({ ...base, backend: { url: 'smtp://mx.example.test:25' } });
  assert.equal(withBundledBackend(rules, { address: { host: '127.0.0.1', port: 2526 } }), rules);
});
