import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RulesSchema } from '../../src/config/schema.js';
import { DirectoryModel } from '../../src/directory/directory-model.js';
import { AcceptedDomains } from '../../src/net/accepted-domains.js';
import { compileRules } from '../../src/policy/compiled-rules.js';
import { isLocalRecipient } from '../../src/policy/relay-protection.js';

test('AcceptedDomains: a domain is ours in any IDN form, any case, with or without its trailing dot', () => {
  const ours = new AcceptedDomains(['Bücher.test', 'example.COM.']);
  for (const d of ['bücher.test', 'XN--BCHER-KVA.test', 'bücher.test.', 'example.com', 'Example.Com.']) assert.equal(ours.has(d), true, d);
  for (const d of ['other.test', 'sub.example.com', 'example.com.evil', '']) assert.equal(ours.has(d), false, d);
  assert.equal(ours.holds('Anyone@BÜCHER.test'), true);
  assert.equal(ours.holds('"a@other.test"@example.com'), true, 'the domain is after the last @');
  assert.equal(ours.holds('postmaster'), false);
});

test('AcceptedDomains: holds(address) is has(domain) for every address, whatever the bytes', () => {
  const ours = new AcceptedDomains(['example.test', 'bücher.test']);
  const domain = fc.oneof(fc.constantFrom('example.test', 'EXAMPLE.test.', 'xn--bcher-kva.test', 'Bücher.test'), fc.string({ maxLength: 30 }).filter((d) => !d.includes('@')));
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }).filter((l) => !l.includes('@')), domain, (local, d) => {
      assert.equal(ours.holds(`${local}@${d}`), ours.has(d));
    }),
    { numRuns: 300 },
  );
});

test('relay protection and the directory agree on which plain recipients are local', () => {
  const rules = RulesSchema.parse({
    hostname: 'mx.example.test',
    acceptedDomains: ['example.test', 'bücher.test'],
    listeners: [{ name: 'main', listen: '127.0.0.1:25' }],
  });
  const compiled = compileRules(rules);
  const directory = DirectoryModel.fromRules(rules);
  const local = fc.stringMatching(/^[A-Za-z0-9._+-]{1,12}$/);
  const domain = fc.constantFrom('example.test', 'Example.TEST.', 'xn--bcher-kva.test', 'BÜCHER.test', 'other.test', 'example.test.evil');
  fc.assert(
    fc.property(local, domain, (l, d) => {
      const address = `${l}@${d}`;
      assert.equal(isLocalRecipient(compiled, address), directory.isLocal(address), address);
    }),
    { numRuns: 300 },
  );
});
