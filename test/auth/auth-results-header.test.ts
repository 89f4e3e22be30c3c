/**
 * The edge's Authentication-Results field and the removal of forged ones (RFC 8601 5): examples,
 * then properties over hostile header sections (any folding, comments, quoting, case).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { authenticationResults, authservIdOf, stripForgedResults } from '../../src/auth/auth-results-header.js';

const ID = 'mx.example.test';
const strip = (head: string): { head: string; removed: number } => {
  const r = stripForgedResults(Buffer.from(head, 'latin1'), ID);
  return { head: r.head.toString('latin1'), removed: r.removed };
};

describe('Authentication-Results', () => {
  it('is written with our authserv-id first, one method entry a folded line (RFC 8601 2.2)', () => {
    assert.equal(authenticationResults(ID, ['spf=pass smtp.mailfrom=a@example.org', 'dkim=none']), `Authentication-Results: ${ID};\r\n\tspf=pass smtp.mailfrom=a@example.org;\r\n\tdkim=none\r\n`);
    assert.equal(authenticationResults(ID, []), `Authentication-Results: ${ID};\r\n\tnone\r\n`);
  });

  it('the authserv-id is read past comments and white space, as a token or a quoted string', () => {
    assert.equal(authservIdOf(' mx.example.test; spf=pass'), 'mx.example.test');
    assert.equal(authservIdOf(' (forged (nested)) \r\n MX.Example.Test ; spf=pass'), 'MX.Example.Test');
    assert.equal(authservIdOf(' "mx.example.test"; spf=pass'), 'mx.example.test');
    assert.equal(authservIdOf(' mx.example.test.evil; spf=pass'), 'mx.example.test.evil');
  });

  it('removes every field claiming our id (any case, folded, after a comment) and keeps everyone else\'s', () => {
    const head = [
      'Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000',
      `Authentication-Results: ${ID}; dkim=pass header.d=bank.example`,
      'Authentication-Results: other.example; spf=fail',
      `authentication-results : (looks innocent)\r\n MX.EXAMPLE.TEST;\r\n\tdmarc=pass`,
      `Authentication-Results: mx.example.test.evil; spf=pass`,
      'Subject: hi',
      '',
      '',
    ].join('\r\n');
    const r = strip(head);
    assert.equal(r.removed, 2);
    assert.equal(
      r.head,
      ['Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000', 'Authentication-Results: other.example; spf=fail', 'Authentication-Results: mx.example.test.evil; spf=pass', 'Subject: hi', '', ''].join('\r\n'),
    );
  });

  it('a header section with bare LF line ends is handled the same way', () => {
    assert.deepEqual(strip(`Subject: x\nAuthentication-Results: ${ID}; spf=pass\n\n`), { head: 'Subject: x\n\n', removed: 1 });
  });

  const fieldName = fc.constantFrom('Subject', 'From', 'To', 'Received', 'X-Test', 'Authentication-Results', 'ARC-Authentication-Results');
  const text = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ';', '(', ')', '"', '\\', '.', 'M', 'x', '\t'), maxLength: 30 });
  const field = fc.record({ name: fieldName, value: text, fold: fc.boolean(), eol: fc.constantFrom('\r\n', '\n') }).map(({ name, value, fold, eol }) => `${name}:${fold ? `${eol} ` : ' '}${value}${eol}`);
  const forged = fc.record({ comment: fc.constantFrom('', ' (c) ', ' (a (b) c)\r\n '), id: fc.constantFrom(ID, ID.toUpperCase(), `"${ID}"`), rest: text, eol: fc.constantFrom('\r\n', '\n') }).map(
    ({ comment, id, rest, eol }) => `Authentication-Results:${comment} ${id}; ${rest}${eol}`,
  );

  it('property: every forged field goes, every other field stays byte for byte and in order', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(field.map((f) => ({ f, ours: false })), forged.map((f) => ({ f, ours: true }))), { maxLength: 12 }), (items) => {
        const others = items.filter((i) => !i.ours || false).map((i) => i.f);
        const r = strip(items.map((i) => i.f).join('') + '\r\n');
        const keptOurs = others.filter((f) => /^authentication-results[ \t]*:/i.test(f) && authservIdOf(f.slice(f.indexOf(':') + 1)).toLowerCase() === ID);
        assert.equal(r.head, others.filter((f) => !keptOurs.includes(f)).join('') + '\r\n');
        assert.equal(r.removed, items.filter((i) => i.ours).length + keptOurs.length);
      }),
      { numRuns: 300 },
    );
  });

  it('property: stripping is idempotent and never grows the header section, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(forged, { maxLength: 3 }), (bytes, extra) => {
        const head = Buffer.concat([Buffer.from(bytes), Buffer.from(extra.join(''), 'latin1')]);
        const once = stripForgedResults(head, ID);
        assert.ok(once.head.length <= head.length);
        const twice = stripForgedResults(once.head, ID);
        assert.equal(twice.removed, 0);
        assert.deepEqual(twice.head, once.head);
      }),
      { numRuns: 300 },
    );
  });
});
