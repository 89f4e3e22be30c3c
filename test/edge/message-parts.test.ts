import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { libraryReply } from '../../src/edge/edge-smtp-server.js';
import { headerFromAddress, readHeaderSection } from '../../src/edge/header-from.js';
import { receivedHeader } from '../../src/edge/received-header.js';
import { formatReply } from '../../src/net/smtp-reply.js';

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

describe('header section and From:', () => {
  it('stops at the blank line even when it straddles chunks, and keeps the body start', async () => {
    const it = chunks('From: "Ted, B" <ted@contoso.com>\r\nSubj', 'ect: x\r\n\r', '\nbody\r\n', 'more\r\n');
    const seen: number[] = [];
    const s = await readHeaderSection(it, 1000, (c) => seen.push(c.length));
    assert.equal(s.head.toString(), 'From: "Ted, B" <ted@contoso.com>\r\nSubject: x\r\n\r\n');
    assert.equal(s.rest.toString(), 'body\r\n');
    assert.equal(headerFromAddress(s.head), 'ted@contoso.com');
    assert.equal((await it.next()).value?.toString(), 'more\r\n', 'the rest is still to be read');
  });

  it('property: any message, cut into any chunks, splits where it does in one piece', async () => {
    const text = fc.array(fc.constantFrom('\r', '\n', '\r\n', 'From: a@b.example', ' ', 'x'), { maxLength: 40 }).map((p) => p.join(''));
    await fc.assert(
      fc.asyncProperty(text, fc.array(fc.nat(), { maxLength: 8 }), fc.integer({ min: 1, max: 64 }), async (message, cuts, max) => {
        const at = [...new Set(cuts.map((c) => c % (message.length + 1)))].sort((a, b) => a - b);
        const pieces = [0, ...at].map((from, k) => message.slice(from, [...at, message.length][k]));
        const whole = await readHeaderSection(chunks(message), max, () => undefined);
        const cut = await readHeaderSection(chunks(...pieces), max, () => undefined);
        // A cap hit mid-chunk keeps that whole chunk in the head; without a cap hit the split is the same.
        if (whole.head.length < max && cut.head.length < max) {
          assert.equal(cut.head.toString('latin1'), whole.head.toString('latin1'));
          assert.equal(Buffer.concat([cut.head, cut.rest]).toString('latin1'), message.slice(0, cut.head.length + cut.rest.length));
        }
        // What is relayed as one piece is the head followed by the rest, whatever the chunks.
        for (const s of [whole, cut]) assert.equal(s.read.toString('latin1'), Buffer.concat([s.head, s.rest]).toString('latin1'));
      }),
      { numRuns: 300 },
    );
  });

  it('property: the header section ends just past the first blank line, CRLF or bare LF, or a leading one', async () => {
    const text = fc.array(fc.constantFrom('\r', '\n', '\r\n', '\r\n\r\n', '\n\n', 'From: a@b.example', ' ', 'x'), { maxLength: 40 }).map((p) => p.join(''));
    await fc.assert(
      fc.asyncProperty(text, async (message) => {
        const leading = /^\r?\n/.exec(message);
        const blank = leading ?? /\r\n\r\n|\n\n/.exec(message);
        const s = await readHeaderSection(chunks(message), message.length + 1, () => undefined);
        assert.equal(s.head.toString('latin1'), blank ? message.slice(0, blank.index + blank[0].length) : message);
      }),
      { numRuns: 1000 },
    );
  });

  it('folded From:, a group, no From:, and a message that is all header', async () => {
    assert.equal(headerFromAddress(Buffer.from('Subject: a\r\nFrom:\r\n  Undisclosed: <x@y.example>;\r\n\r\n')), 'x@y.example');
    assert.equal(headerFromAddress(Buffer.from('Subject: a\r\n\r\n')), undefined);
    const s = await readHeaderSection(chunks('From: a@b.example\r\n'), 1000, () => undefined);
    assert.equal(s.ended, true);
    assert.equal(headerFromAddress(s.head), 'a@b.example');
  });
});

describe('Received: header', () => {
  it('is folded, names the client, and cannot be split by a hostile HELO', () => {
    const h = receivedHeader({ helo: 'evil\r\nX-Injected: 1', clientIp: '2001:db8::7', by: 'edge.test', id: 'abc', protocol: 'ESMTPS', date: new Date(Date.UTC(2024, 2, 5, 10, 0, 0)) });
    assert.equal(h, 'Received: from evil??X-Injected:?1 ([IPv6:2001:db8::7])\r\n\tby edge.test (Portcullis) with ESMTPS id abc;\r\n\tTue, 05 Mar 2024 10:00:00 +0000\r\n');
  });
});

describe("smtp-server's replies", () => {
  it('get the contract codes', () => {
    const f = (code: number, text: string, ctx?: string | false): string => formatReply(libraryReply(code, text, ctx));
    assert.equal(f(421, 'Timeout - closing connection'), '421 4.4.2 Timeout - closing connection\r\n');
    assert.equal(f(421, 'Server shutting down'), '421 4.3.2 Server shutting down\r\n');
    assert.equal(f(421, 'edge You talk too soon'), '421 4.7.0 edge You talk too soon\r\n');
    assert.equal(f(503, 'Error: need MAIL command'), '503 5.5.1 Error: need MAIL command\r\n');
    assert.equal(f(501, 'Error: Bad sender address syntax', 'SENDER_SYNTAX_ERROR'), '501 5.5.4 Error: Bad sender address syntax\r\n');
    assert.equal(f(552, 'too big', 'MESSAGE_TOO_BIG'), '552 5.3.4 too big\r\n');
    assert.equal(f(354, 'End data'), '354 End data\r\n');
    assert.equal(f(220, 'edge ESMTP', false), '220 edge ESMTP\r\n');
    assert.equal(f(550, '5.7.1 Unable to relay'), '550 5.7.1 Unable to relay\r\n', 'an enhanced code already in the text is kept');
  });
});
