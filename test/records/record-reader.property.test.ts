/** The record reader is fed whatever is on disk: no line, however broken, makes it throw. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseRecordLine, RECORD_FORMAT } from '../../src/policy/decision-record.js';

const valid = {
  format: RECORD_FORMAT,
  id: 'abcdefghijklmnop',
  start: '2026-12-01T00:00:00.000Z',
  end: '2026-12-01T00:00:01.000Z',
  listener: 'main',
  client: '192.0.2.1',
  rules: '0123456789abcdef',
  events: [{ kind: 'connect', verdict: { action: 'accept', code: 220, enhanced: '', text: 'edge ESMTP', step: 2, check: 'IP restrictions' }, trace: [] }],
  reportOnly: [],
  dns: [],
  zones: {},
  backend: [],
  inputs: {},
};

describe('parseRecordLine', () => {
  it('a valid record is read back as written', () => {
    assert.deepEqual(parseRecordLine(JSON.stringify(valid)), { kind: 'record', record: valid });
  });

  it('arbitrary text never throws, and is corrupt unless it is a record or names a newer format', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (line) => {
        const r = parseRecordLine(line);
        assert.ok(['corrupt', 'newer', 'record'].includes(r.kind));
      }),
      { numRuns: 500 },
    );
  });

  it('arbitrary JSON values, and records with any field replaced, never throw', () => {
    const keys = Object.keys(valid);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom(...keys), (value, key) => {
        assert.doesNotThrow(() => parseRecordLine(JSON.stringify(value)));
        const broken = parseRecordLine(JSON.stringify({ ...valid, [key]: value }));
        if (broken.kind === 'record') assert.equal(broken.record.id.length > 0, true);
      }),
      { numRuns: 300 },
    );
  });

  it('a truncated record is corrupt; a newer format is named, not guessed at', () => {
    const line = JSON.stringify(valid);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: line.length - 1 }), (cut) => {
        assert.equal(parseRecordLine(line.slice(0, cut)).kind, 'corrupt');
      }),
      { numRuns: 200 },
    );
    assert.deepEqual(parseRecordLine(JSON.stringify({ ...valid, format: 2 })), { kind: 'newer', format: 2 });
  });
});
