/** Steps 7.2 and 15.1-15.3 as decisions: what each listener setting makes of each result. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageAuth, SpfCheck } from '../../src/auth/sender-auth.js';
import type { ListenerSenderAuth } from '../../src/config/schema.js';
import { IpList } from '../../src/net/ip-list.js';
import { judgeMessage, judgeSpf, type AuthExemptions } from '../../src/policy/sender-auth-checks.js';
import type { TraceEntry } from '../../src/policy/verdict.js';

const OFF: ListenerSenderAuth = { enforceSpf: false, enforceDmarc: false, onTempError: 'accept', reportOnly: false };
const ENFORCE: ListenerSenderAuth = { enforceSpf: true, enforceDmarc: true, onTempError: 'tempfail', reportOnly: false };
const NONE: AuthExemptions = { clients: IpList.parse([]), domains: [] };
const spf = (result: SpfCheck['result']): SpfCheck => ({ result, domain: 'example.org', identity: 'mailfrom', info: `spf=${result}` });
const dmarc = (result: 'pass' | 'fail' | 'temperror', policy: 'none' | 'quarantine' | 'reject' | undefined): MessageAuth => ({
  dkim: [{ result: 'none', domain: undefined, info: 'dkim=none' }],
  arc: { result: 'none', info: 'arc=none' },
  dmarc: { result, domain: 'example.org', policy, info: `dmarc=${result}` },
});

describe('step 7.2 SPF', () => {
  it('fail: accepted and counted `accept` when not enforced, 550 5.7.23 when enforced', () => {
    assert.deepEqual(judgeSpf(OFF, NONE, '192.0.2.1', spf('fail'), 'a@example.org', []).verdict.auth, { mechanism: 'spf', result: 'fail', action: 'accept' });
    const v = judgeSpf(ENFORCE, NONE, '192.0.2.1', spf('fail'), 'a@example.org', []).verdict;
    assert.deepEqual([v.action, v.code, v.enhanced, v.step, v.check], ['reject', 550, '5.7.23', 7.2, 'SPF']);
  });

  it('softfail, neutral, none and permerror are never refused (RFC 7208 8.4-8.7 leave them to local policy)', () => {
    for (const r of ['softfail', 'neutral', 'none', 'permerror'] as const) assert.equal(judgeSpf(ENFORCE, NONE, '192.0.2.1', spf(r), 'a@example.org', []).verdict.action, 'accept', r);
  });

  it('temperror: 451 4.7.24 only with onTempError tempfail', () => {
    assert.equal(judgeSpf(ENFORCE, NONE, '192.0.2.1', spf('temperror'), 'a@example.org', []).verdict.code, 451);
    assert.equal(judgeSpf({ ...ENFORCE, onTempError: 'accept' }, NONE, '192.0.2.1', spf('temperror'), 'a@example.org', []).verdict.action, 'accept');
  });

  it('an exempt client network is stamped and counted `exempt`, with the entry in the trace', () => {
    const trace: TraceEntry[] = [];
    const j = judgeSpf(ENFORCE, { clients: IpList.parse(['192.0.2.0/24']), domains: [] }, '192.0.2.1', spf('fail'), 'a@example.org', trace);
    assert.deepEqual([j.verdict.action, j.verdict.auth?.action], ['accept', 'exempt']);
    assert.match(trace[0]!.outcome, /not enforced: client on senderAuth\.exempt\.clients \(192\.0\.2\.0\/24\)/);
  });

  it('report-only: the refusal is observed as report-only, the verdict accepts', () => {
    const j = judgeSpf({ ...ENFORCE, reportOnly: true }, NONE, '192.0.2.1', spf('fail'), 'a@example.org', []);
    assert.equal(j.verdict.action, 'accept');
    assert.deepEqual(j.observed.map((v) => [v.action, v.reportOnly ?? false, v.auth?.action]), [['reject', true, 'report'], ['accept', false, 'accept']]);
  });
});

describe('steps 15.1-15.3 DKIM, DMARC, ARC', () => {
  it('p=reject failure: 550 5.7.1 when enforced, relayed when not', () => {
    assert.deepEqual([judgeMessage(ENFORCE, NONE, '192.0.2.1', dmarc('fail', 'reject'), []).verdict.code, judgeMessage(OFF, NONE, '192.0.2.1', dmarc('fail', 'reject'), []).verdict.action], [550, 'relay']);
  });

  it('p=quarantine failure: relayed with the quarantine header; report-only says it would have, and adds none', () => {
    const q = judgeMessage(ENFORCE, NONE, '192.0.2.1', dmarc('fail', 'quarantine'), []);
    assert.deepEqual([q.verdict.action, q.quarantine], ['relay', 'dmarc; domain=example.org; policy=quarantine']);
    const trace: TraceEntry[] = [];
    const r = judgeMessage({ ...ENFORCE, reportOnly: true }, NONE, '192.0.2.1', dmarc('fail', 'quarantine'), trace);
    assert.equal(r.quarantine, undefined);
    assert.ok(r.observed.some((v) => v.auth?.mechanism === 'dmarc' && v.auth.action === 'report'));
    assert.ok(trace.some((t) => t.outcome === 'report only, would mark the message for quarantine'));
  });

  it('p=none failure and a pass are relayed; a DMARC temperror is 451 4.7.1 only with onTempError tempfail', () => {
    assert.equal(judgeMessage(ENFORCE, NONE, '192.0.2.1', dmarc('fail', 'none'), []).verdict.action, 'relay');
    assert.equal(judgeMessage(ENFORCE, NONE, '192.0.2.1', dmarc('pass', 'reject'), []).verdict.action, 'relay');
    const t = judgeMessage(ENFORCE, NONE, '192.0.2.1', dmarc('temperror', undefined), []).verdict;
    assert.deepEqual([t.code, t.enhanced], [451, '4.7.1']);
    assert.equal(judgeMessage({ ...ENFORCE, onTempError: 'accept' }, NONE, '192.0.2.1', dmarc('temperror', undefined), []).verdict.action, 'relay');
  });

  it('an exempt From: domain (or a subdomain of one) is not refused; the trace runs 15.1, 15.2, 15.3 in order', () => {
    const trace: TraceEntry[] = [];
    const j = judgeMessage(ENFORCE, { clients: IpList.parse([]), domains: ['Example.ORG'] }, '192.0.2.1', dmarc('fail', 'reject'), trace);
    assert.equal(j.verdict.action, 'relay');
    assert.deepEqual(trace.map((t) => t.step), [15.1, 15.2, 15.3]);
    assert.match(trace[1]!.outcome, /not enforced: domain on senderAuth\.exempt\.domains \(Example\.ORG\)/);
  });
});
