/**
 * The adapter's parse of MAIL FROM and RCPT TO is smtp-server's own: for any line, the adapted
 * connection's `_parseAddressCommand` returns exactly what smtp-server's returns (the common shape
 * through parseSimpleAddressCommand, everything else through smtp-server), in strict and lenient mode.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { parseSimpleAddressCommand } from '../../src/net/address-command.js';
import { AdaptedConnection } from '../../src/net/smtp-server-adapter.js';

type Parse = (this: unknown, name: string, command: Buffer | string) => unknown;

function connectionLike(lenientAddressParsing: boolean): unknown {
  return { id: 'test', session: {}, _server: { options: { lenientAddressParsing }, logger: { error: () => undefined } } };
}

const ours = AdaptedConnection.prototype._parseAddressCommand as Parse;
const theirs = SMTPConnection.prototype._parseAddressCommand as Parse;

const pick = <T>(...xs: T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);
const verb = pick('MAIL FROM', 'RCPT TO', 'mail from', 'Rcpt To', 'MAIL  FROM', 'MAIL TO', 'RCPT FROM', 'MAIL FROM ');
const atoms = pick('a', 'Z', '0', '.', '..', '-', '+', '=', '_', '!', '"', ' ', ':', '@', 'xn--', 'XN--', '[', ']', '<', '>', '\t', '\u00e9', '\u200b', '\x01', 'postmaster', 'IPv6:', '1.2.3.4', '::1', 'ab+2Ccd');
const piece = fc.oneof(fc.array(atoms, { maxLength: 6 }).map((xs) => xs.join('')), fc.string({ maxLength: 6 }), fc.stringMatching(/^[a-z0-9.-]{1,12}$/));
const address = fc.oneof(
  fc.tuple(piece, piece).map(([l, d]) => `<${l}@${d}>`),
  fc.tuple(fc.stringMatching(/^[a-z0-9.+_-]{1,20}$/), fc.stringMatching(/^[a-z0-9.-]{1,30}$/)).map(([l, d]) => `<${l}@${d}>`),
  pick('<>', '<postmaster>', '<@relay.example:a@b.example>', '<a@[192.0.2.1]>', `<${'a'.repeat(200)}@${'b'.repeat(60)}.example>`),
  piece,
);
const param = fc.oneof(
  pick('SIZE=1000', 'BODY=8BITMIME', 'BODY=7bit', 'SMTPUTF8', 'size=12', 'SIZE=', 'SIZE', 'ENVID=a+2Bb', 'ENVID=a=b', 'ORCPT=rfc822;a@b', 'NOTIFY=NEVER', 'X=\x01', '=x', 'RET=HDRS'),
  fc.tuple(piece, piece).map(([k, v]) => `${k}=${v}`),
  piece,
);
const line = fc
  .tuple(verb, pick(':', ': ', ' :', ''), address, fc.array(fc.tuple(pick(' ', '  ', '\t'), param), { maxLength: 4 }), pick('', ' ', '\t'))
  .map(([v, colon, a, ps, end]) => `${v}${colon}${a}${ps.map(([sp, p]) => sp + p).join('')}${end}`);
// Lines close to the common shape, most of them in it: the parse that skips smtp-server's is exercised.
const near = fc
  .tuple(
    pick('MAIL FROM', 'RCPT TO', 'mail from'),
    fc.oneof(fc.stringMatching(/^[A-Za-z0-9+=_'-]{1,8}(\.[A-Za-z0-9+=_'-]{1,8}){0,2}$/), pick('', 'a', '.a', 'a.', 'a..b', '\u00e9')),
    fc.oneof(fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,6}[A-Za-z0-9])?(\.[A-Za-z0-9]{1,8}){0,3}$/), pick('', 'b', 'xn--bcher-kva.example', 'a.-b', '[1.2.3.4]', 'b.', 'B.EXAMPLE')),
    fc.array(fc.oneof({ weight: 3, arbitrary: pick('SIZE=1000', 'BODY=8BITMIME', 'SMTPUTF8', 'size=12', 'RET=HDRS', 'ENVID=x:y', 'NOTIFY=NEVER') }, param), { maxLength: 3 }),
  )
  .map(([v, l, d, ps]) => `${v}:<${l || d ? `${l}@${d}` : ''}>${ps.map((p) => ` ${p}`).join('')}`);

/** The common-shape parse as first written, one regular expression: the scan takes and refuses the same lines. */
const SIMPLE = /^(MAIL FROM|RCPT TO):<(?:([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+)@([A-Za-z0-9.-]+))?>((?: [A-Za-z0-9-]+(?:=[!-*,-<>-~]+)?)*)$/i;
function byExpression(name: string, command: string): unknown {
  const m = SIMPLE.exec(command);
  if (!m || m[1]?.toUpperCase() !== name.toUpperCase()) return undefined;
  const [, , local, domain, params] = m;
  let address = '';
  if (local !== undefined && domain !== undefined) {
    if (local.length + 1 + domain.length > 253) return undefined;
    if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return undefined;
    if (domain.startsWith('.') || domain.endsWith('.') || domain.includes('..') || domain.includes('.-') || domain.includes('-.')) return undefined;
    if (/xn--/i.test(domain)) return undefined;
    address = `${local}@${domain}`;
  }
  if (!params) return { address, args: false };
  const args: Record<string, string | true> = {};
  let duplicate: string | undefined;
  for (const param of params.slice(1).split(' ')) {
    const eq = param.indexOf('=');
    const key = (eq < 0 ? param : param.slice(0, eq)).toUpperCase();
    if (key in args) duplicate = key;
    args[key] = eq < 0 ? true : param.slice(eq + 1);
  }
  return duplicate === undefined ? { address, args } : { address, args, duplicate };
}

// Characters next to the scan's classes and checks: case, `@`, `<`, `>`, dots and hyphens, xn--, 8-bit and control characters.
const scanChars = pick(...'aZ09.-+=_!~`{|}@<>: xXnN-\u00e9\u017f\u212a\u0131\x00\x7f"[]('.split(''));
const scanned = fc
  .tuple(
    pick('MAIL FROM:<', 'mail from:<', 'RCPT TO:<', 'rcpt To:<', 'MAIL FROM: <', 'MAIL FROM:', 'MAIL\u017fFROM:<', 'MA\u0131L FROM:<', 'RCPT TO<'),
    fc.array(scanChars, { maxLength: 12 }).map((c) => c.join('')),
    pick('', '@', '@b.example', '@xn--a.b', '@XN--a', '@a.xn-', '@a-.b', '@a.-b', '@a..b', '@.a', '@a.'),
    pick('>', '', '>>', '> ', '> SIZE=1', '> SIZE=1 body=8BITMIME', '> X', '> X=', '> X=a+b', '> X=a=b', '>  X', '> x-y=\u00e9', '> SIZE=1 SIZE=2'),
  )
  .map(([v, l, d, end]) => `${v}${l}${d}${end}`);

describe('MAIL FROM / RCPT TO parsing', () => {
  it('scans the common shape to what the regular expression found (property)', () => {
    fc.assert(
      fc.property(pick('mail from', 'rcpt to'), fc.oneof(line, near, scanned), (name, text) => {
        assert.deepEqual(parseSimpleAddressCommand(name, text), byExpression(name, text), JSON.stringify(text));
      }),
      { numRuns: 30000 },
    );
    const long = `MAIL FROM:<${'a'.repeat(200)}@${'b'.repeat(50)}.c>`;
    for (const text of [long, long.replace('.c>', '.co>'), 'MAIL FROM:<>', 'MAIL FROM:<> ', 'MAIL FROM:<a@b>', 'MAIL FROM:<a@b', 'MAIL FROM:<@b>', 'MAIL FROM:<a@>', 'MAIL FROM:<a@bxn--c>']) {
      assert.deepEqual(parseSimpleAddressCommand('mail from', text), byExpression('mail from', text), text);
    }
  });


  it('is smtp-server\'s parse for any line (property)', () => {
    fc.assert(
      fc.property(pick('mail from', 'rcpt to'), fc.oneof(line, near), fc.boolean(), (name, text, lenient) => {
        const self = connectionLike(lenient);
        const command = Buffer.from(text);
        assert.deepEqual(ours.call(self, name, command), theirs.call(self, name, command));
      }),
      { numRuns: 10000 },
    );
  });

  it('takes the common shape itself, and leaves the rest to smtp-server', () => {
    assert.deepEqual(parseSimpleAddressCommand('mail from', 'MAIL FROM:<load@bench.test>'), { address: 'load@bench.test', args: false });
    assert.deepEqual(parseSimpleAddressCommand('mail from', 'MAIL FROM:<> SIZE=1024 BODY=8BITMIME'), { address: '', args: { SIZE: '1024', BODY: '8BITMIME' } });
    assert.deepEqual(parseSimpleAddressCommand('rcpt to', 'rcpt to:<User@Example.test>'), { address: 'User@Example.test', args: false });
    assert.deepEqual(parseSimpleAddressCommand('mail from', 'MAIL FROM:<a@b.example> SIZE=1 size=2'), { address: 'a@b.example', args: { SIZE: '2' }, duplicate: 'SIZE' });
    // A name other than the two smtp-server's handlers pass is left to smtp-server's parser.
    assert.equal(parseSimpleAddressCommand('MAIL FROM', 'mail from:<a@b.example>'), undefined);
    assert.equal(parseSimpleAddressCommand('rcpt to', 'MAIL FROM:<a@b.example>'), undefined);
    for (const other of ['MAIL FROM: <a@b.example>', 'MAIL FROM:<a@xn--bcher-kva.example>', 'MAIL FROM:<a@[192.0.2.1]>', 'RCPT TO:<postmaster>', 'MAIL FROM:<a@b.example> ENVID=a+2Bb', 'MAIL FROM:<a..b@c.example>', 'RCPT TO:<a@b.example>']) {
      assert.equal(parseSimpleAddressCommand('mail from', other), undefined, other);
    }
  });
});
