import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RulesSchema, type Rules } from '../../src/config/schema.js';
import { categorize, countHops, outboundRecipient } from '../../src/transport/categorizer.js';
import { AmbiguousAddressError, DirectoryModel } from '../../src/directory/directory-model.js';
import type { Envelope } from '../../src/transport/types.js';

function rules(directory: Record<string, unknown>, limits: Record<string, unknown> = {}): Rules {
  return RulesSchema.parse({
    hostname: 'mx.example.com',
    acceptedDomains: ['example.com', 'example.org'],
    listeners: [{ name: 'edge', listen: '127.0.0.1:2525' }],
    directory,
    transport: { limits },
  });
}

function envelope(recipients: string[], size = 1000): Envelope {
  return { id: 'q1', mailFrom: 'sender@remote.test', recipients: recipients.map((address) => ({ address })), size, receivedAt: 0 };
}

const directory = {
  addresses: ['plain@example.com'],
  mailboxes: [
    { address: 'alice@example.com', proxyAddresses: ['alice.smith@example.org', 'a@example.com'] },
    { address: 'bob@example.com', proxyAddresses: [], quotaBytes: 5000 },
  ],
  aliases: [
    { address: 'sales@example.com', forwardTo: ['partner@remote.test'] },
    { address: 'help@example.com', forwardTo: ['alice@example.com'] },
    { address: 'loop-a@example.com', forwardTo: ['loop-b@example.com'] },
    { address: 'loop-b@example.com', forwardTo: ['loop-a@example.com'] },
  ],
  groups: [
    { address: 'team@example.com', members: ['alice@example.com', 'a@example.com', 'bob@example.com', 'inner@example.com', 'sales@example.com'] },
    { address: 'inner@example.com', members: ['bob@example.com', 'plain@example.com', 'team@example.com'] },
    { address: 'ring1@example.com', members: ['ring2@example.com'] },
    { address: 'ring2@example.com', members: ['ring1@example.com'] },
    { address: 'empty@example.com', members: [] },
  ],
};

test('a mailbox is local by its primary or any proxy address, case-insensitively, once', () => {
  const r = rules(directory);
  const c = categorize(envelope(['Alice@Example.com', 'alice.smith@example.org', 'a@EXAMPLE.COM.']), { hopCount: 1 }, DirectoryModel.fromRules(r), r);
  assert.deepEqual(c.local.map((l) => l.mailbox), ['alice@example.com']);
  assert.equal(c.remote.length, 0);
  assert.equal(c.failed.length, 0);
});

test('plain directory.addresses entries are mailboxes', () => {
  const r = rules(directory);
  const c = categorize(envelope(['plain@example.com']), { hopCount: 0 }, DirectoryModel.fromRules(r), r);
  assert.deepEqual(c.local.map((l) => l.mailbox), ['plain@example.com']);
});

test('an alias forwards to a remote contact, and ORCPT keeps the original recipient', () => {
  const r = rules(directory);
  const c = categorize(envelope(['sales@example.com']), { hopCount: 0 }, DirectoryModel.fromRules(r), r);
  assert.deepEqual(c.remote.map((x) => x.address), ['partner@remote.test']);
  const out = outboundRecipient(c.remote[0]!);
  assert.deepEqual(out, { address: 'partner@remote.test', orcpt: 'rfc822;sales@example.com' });
});

test('an alias forwards to a local mailbox', () => {
  const r = rules(directory);
  const c = categorize(envelope(['help@example.com', 'alice@example.com']), { hopCount: 0 }, DirectoryModel.fromRules(r), r);
  assert.deepEqual(c.local.map((l) => l.mailbox), ['alice@example.com']);
  assert.equal(c.local[0]!.recipient.address, 'help@example.com');
});

test('a group expands once, removes duplicates and survives its own nesting loop', () => {
  const r = rules(directory);
  const c = categorize(envelope(['team@example.com']), { hopCount: 0 }, DirectoryModel.fromRules(r), r);
  assert.deepEqual(c.local.map((l) => l.mailbox).sort(), ['alice@example.com', 'bob@example.com', 'plain@example.com']);
  assert.deepEqual(c.remote.map((x) => x.address), ['partner@remote.test']);
  assert.equal(c.failed.length, 0);
  assert.deepEqual(c.expansions.map((e) => e.group), ['team@example.com', 'inner@example.com']);
});

test('groups that only contain each other fail 5.4.6; an empty group fails nobody', () => {
  const r = rules(directory);
  const c = categorize(envelope(['ring1@example.com', 'empty@example.com']), { hopCount: 0 }, DirectoryModel.fromRules(r), r);
  assert.equal(c.failed.length, 1);
  assert.equal(c.failed[0]!.result.enhanced, '5.4.6');
  assert.equal(c.failed[0]!.recipient.address, 'ring1@example.com');
});

test('a forwarding loop A -> B -> A fails 5.4.6', () => {
  const r = rules(directory);
  const c = categorize(envelope(['loop-a@example.com']), { hopCount: 0 }, DirectoryModel.fromRules(r), r);
  assert.equal(c.local.length + c.remote.length, 0);
  assert.equal(c.failed.length, 1);
  assert.equal(c.failed[0]!.result.outcome, 'failed');
  assert.equal(c.failed[0]!.result.enhanced, '5.4.6');
  assert.match(c.failed[0]!.result.text, /loop-a@example.com -> loop-b@example.com -> loop-a@example.com/);
});

test('an unknown local address fails 5.1.1 and has() agrees', () => {
  const r = rules(directory);
  const dir = DirectoryModel.fromRules(r);
  const c = categorize(envelope(['nobody@example.com', 'someone@remote.test']), { hopCount: 0 }, dir, r);
  assert.deepEqual(c.failed.map((f) => [f.result.address, f.result.code, f.result.enhanced]), [['nobody@example.com', 550, '5.1.1']]);
  assert.deepEqual(c.remote.map((x) => x.address), ['someone@remote.test']);
  assert.equal(dir.has('nobody@example.com'), false);
  for (const known of ['alice@example.com', 'alice.smith@example.org', 'sales@example.com', 'team@example.com', 'plain@example.com']) {
    assert.equal(dir.has(known), true, known);
  }
});

test('with forwardUnresolvedTo, an unknown local address goes remote and has() says yes', () => {
  const r = rules({ ...directory, forwardUnresolvedTo: '127.0.0.1:2600' });
  const dir = DirectoryModel.fromRules(r);
  const c = categorize(envelope(['nobody@example.com']), { hopCount: 0 }, dir, r);
  assert.deepEqual(c.remote.map((x) => x.address), ['nobody@example.com']);
  assert.equal(c.failed.length, 0);
  assert.equal(dir.has('nobody@example.com'), true);
});

test('hop count over the maximum fails every recipient 4.4.6; at the maximum it passes', () => {
  const r = rules(directory, { maxHopCount: 15 });
  const dir = DirectoryModel.fromRules(r);
  const over = categorize(envelope(['alice@example.com', 'x@remote.test']), { hopCount: 16 }, dir, r);
  assert.deepEqual(over.failed.map((f) => [f.result.outcome, f.result.enhanced]), [['failed', '4.4.6'], ['failed', '4.4.6']]);
  assert.equal(categorize(envelope(['alice@example.com']), { hopCount: 15 }, dir, r).local.length, 1);
  assert.equal(countHops('Received: from a\r\n\tby b\r\nreceived: from c\r\nSubject: Received: no\r\n'), 2);
});

test('too many recipients fails 5.5.3; too large fails 5.2.3', () => {
  const r = rules(directory, { maxRecipients: 2, maxMessageSize: 10_000 });
  const dir = DirectoryModel.fromRules(r);
  const many = categorize(envelope(['alice@example.com', 'bob@example.com', 'plain@example.com']), { hopCount: 0 }, dir, r);
  assert.deepEqual(many.failed.map((f) => f.result.enhanced), ['5.5.3', '5.5.3', '5.5.3']);
  const big = categorize(envelope(['alice@example.com'], 10_001), { hopCount: 0 }, dir, r);
  assert.deepEqual(big.failed.map((f) => [f.result.code, f.result.enhanced]), [[552, '5.2.3']]);
});

test('the size limit counts the bytes the client sent, not our Received: field; our own DSNs are exempt from message limits', () => {
  const r = rules(directory, { maxRecipients: 1, maxMessageSize: 10_000 });
  const dir = DirectoryModel.fromRules(r);
  const atLimit = categorize({ ...envelope(['alice@example.com'], 10_150), sentSize: 10_000 }, { hopCount: 1 }, dir, r);
  assert.deepEqual([atLimit.local.length, atLimit.failed.length], [1, 0]);
  const over = categorize({ ...envelope(['alice@example.com'], 10_151), sentSize: 10_001 }, { hopCount: 1 }, dir, r);
  assert.deepEqual(over.failed.map((f) => f.result.enhanced), ['5.2.3']);
  const ndr = categorize({ ...envelope(['alice@example.com', 'a@example.com'], 25_000), mailFrom: '', isDsn: true }, { hopCount: 0 }, dir, r);
  assert.deepEqual([ndr.local.map((l) => l.mailbox), ndr.failed.length], [['alice@example.com'], 0]);
});

test('a message larger than the whole mailbox quota fails 5.2.2; otherwise the quota rides along', () => {
  const r = rules(directory);
  const dir = DirectoryModel.fromRules(r);
  const big = categorize(envelope(['bob@example.com', 'alice@example.com'], 6000), { hopCount: 0 }, dir, r);
  assert.deepEqual(big.failed.map((f) => [f.result.address, f.result.enhanced]), [['bob@example.com', '5.2.2']]);
  assert.deepEqual(big.local.map((l) => l.mailbox), ['alice@example.com']);
  const small = categorize(envelope(['bob@example.com']), { hopCount: 0 }, dir, r);
  assert.equal(small.local[0]!.quotaBytes, 5000);
});

test('a malformed recipient fails 5.1.3', () => {
  const r = rules(directory);
  const c = categorize(envelope(['no-at-sign']), { hopCount: 0 }, DirectoryModel.fromRules(r), r);
  assert.equal(c.failed[0]!.result.enhanced, '5.1.3');
});

test('an address claimed by two entries is refused by fromRules (config load reports it with its line: test/config/load.test.ts)', () => {
  const r = rules(directory);
  r.directory.aliases.push({ address: 'alice@example.com', forwardTo: ['x@remote.test'] });
  assert.throws(() => DirectoryModel.fromRules(r), AmbiguousAddressError);
});

test('has() is false exactly for the addresses categorize fails with 5.1.1', () => {
  for (const forwardUnresolvedTo of [undefined, '127.0.0.1:2600']) {
    const r = rules({ ...directory, ...(forwardUnresolvedTo ? { forwardUnresolvedTo } : {}) });
    const dir = DirectoryModel.fromRules(r);
    const candidates = ['alice@example.com', 'A@Example.com', 'alice.smith@example.org', 'plain@example.com', 'sales@example.com', 'team@example.com',
      'ring1@example.com', 'loop-a@example.com', 'empty@example.com', 'nobody@example.com', 'nobody@example.org'];
    for (const address of candidates) {
      const c = categorize(envelope([address]), { hopCount: 0 }, dir, r);
      const unknown = c.failed.some((f) => f.result.enhanced === '5.1.1' && f.result.address === address.toLowerCase());
      assert.equal(dir.has(address), !unknown, `${address} with forwardUnresolvedTo=${String(forwardUnresolvedTo)}`);
    }
  }
});

test('an address we relay keeps its local part exactly as given (only the domain is folded); case twins stay two', () => {
  const r = rules(directory);
  const dir = DirectoryModel.fromRules(r);
  const atom = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,12}$/);
  const localPart = fc.oneof(
    fc.array(atom, { minLength: 1, maxLength: 3 }).map((a) => a.join('.')),
    atom.map((a) => `"${a}..x"`),
  );
  const domain = fc.constantFrom('Remote.TEST', 'remote.test', 'Sub.Partner.test.');
  fc.assert(
    fc.property(localPart, domain, (local, dom) => {
      const twin = local === local.toLowerCase() ? local.toUpperCase() : local.toLowerCase();
      const c = categorize(envelope([`${local}@${dom}`, `${twin}@${dom}`]), { hopCount: 0 }, dir, r);
      const folded = dom.replace(/\.$/, '').toLowerCase();
      const expected = local === twin ? [`${local}@${folded}`] : [`${local}@${folded}`, `${twin}@${folded}`];
      assert.deepEqual(c.remote.map((x) => x.address), expected);
      assert.deepEqual(c.failed, []);
    }),
    { numRuns: 200 },
  );
});

test('an alias or group target outside our domains keeps its case; one of ours still matches in any case', () => {
  const r = rules({
    mailboxes: [{ address: 'alice@example.com' }],
    aliases: [{ address: 'sales@example.com', forwardTo: ['Jane.Doe@Partner.test', 'ALICE@example.com'] }],
    groups: [{ address: 'team@example.com', members: ['John.Smith@remote.test', 'sales@example.com'] }],
  });
  const c = categorize(envelope(['team@example.com']), { hopCount: 0 }, DirectoryModel.fromRules(r), r);
  assert.deepEqual(c.remote.map((x) => x.address), ['John.Smith@remote.test', 'Jane.Doe@partner.test']);
  assert.deepEqual(c.local.map((l) => l.mailbox), ['alice@example.com']);
});
