/** The client's attributes as XFORWARD/XCLIENT pass them on: only those the back end offers, in a fixed order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardAttributes } from '../../src/edge/backend-forward.js';

test('only the attributes offered, in order NAME ADDR PROTO HELO; IPv6 addresses marked; values as xtext', () => {
  assert.equal(
    forwardAttributes({ address: '2001:db8::1', helo: 'mx.client.example', proto: 'ESMTP' }, 'NAME ADDR PROTO HELO'),
    'NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1 PROTO=ESMTP HELO=mx.client.example',
  );
  assert.equal(forwardAttributes({ address: '::ffff:192.0.2.1', proto: 'SMTP' }, 'ADDR'), 'ADDR=IPV6:::ffff:192.0.2.1');
  assert.equal(
    forwardAttributes({ address: '192.0.2.1', hostname: 'a+b', helo: 'x=y', proto: 'SMTP' }, 'helo  addr name'),
    'NAME=a+2Bb ADDR=192.0.2.1 HELO=x+3Dy',
  );
  // Another back end's EHLO line right after: its own list applies.
  assert.equal(forwardAttributes({ address: '192.0.2.1', hostname: 'h.example', proto: 'SMTP' }, 'PROTO'), 'PROTO=SMTP');
  assert.equal(forwardAttributes({ address: '192.0.2.1', proto: 'SMTP' }, ''), '');
});
