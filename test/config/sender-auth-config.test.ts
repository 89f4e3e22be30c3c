/** The `senderAuth` keys: off by default, validated with file:line:key errors, paths made absolute. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigError } from '../../src/config/config-error.js';
import { loadRulesFromString } from '../../src/config/load.js';

const BASE = `hostname: mx.example.test
acceptedDomains: [example.test]
listeners:
  - name: internet
    listen: 127.0.0.1:2525
`;

async function refused(text: string): Promise<ConfigError> {
  return loadRulesFromString(text, '/etc/portcullis/rules.yaml').then(
    () => assert.fail('accepted'),
    (e: unknown) => e as ConfigError,
  );
}

test('without senderAuth nothing is checked: no listener has it, and the shared settings are the defaults', async () => {
  const rules = await loadRulesFromString(BASE, '/etc/portcullis/rules.yaml');
  assert.equal(rules.listeners[0]!.senderAuth, undefined);
  assert.deepEqual(rules.senderAuth, { timeoutMs: 5000, exempt: { clients: [], domains: [] }, spool: { memoryBytes: 262_144 } });
});

test('a listener senderAuth with no keys checks and stamps but enforces nothing; the spool dir is relative to the rule set', async () => {
  const rules = await loadRulesFromString(`${BASE}    senderAuth: {}\nsenderAuth: { spool: { dir: spool } }\n`, '/etc/portcullis/rules.yaml');
  assert.deepEqual(rules.listeners[0]!.senderAuth, { enforceSpf: false, enforceDmarc: false, onTempError: 'accept', reportOnly: false });
  assert.equal(rules.senderAuth.spool.dir, '/etc/portcullis/spool');
});

test('a bad exempt client, a bad domain, an unknown key and a bad onTempError are each named by file, line and key', async () => {
  const err = await refused(`${BASE}    senderAuth: { enforceSpf: true, onTempError: maybe, enforceArc: true }
senderAuth:
  exempt:
    clients: [192.0.2.0/24, 10.0.0.300]
    domains: ["not a domain"]
`);
  const text = err.message;
  assert.match(text, /rules\.yaml:6: listeners\[0\]\.senderAuth\.onTempError: /);
  assert.match(text, /rules\.yaml:6: listeners\[0\]\.senderAuth.*enforceArc/);
  assert.match(text, /rules\.yaml:10: senderAuth\.exempt\.domains\[0\]: expected a domain name/);
  // Address lists are parsed once the shape is right, as every other client list is.
  const client = await refused(`${BASE}senderAuth:\n  exempt:\n    clients: [192.0.2.0/24, 10.0.0.300]\n`);
  assert.equal(client.key, 'senderAuth.exempt.clients[1]');
  assert.match(client.message, /rules\.yaml:8: senderAuth\.exempt\.clients\[1\]: /);
});
