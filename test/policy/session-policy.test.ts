import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RulesSchema, type Rules } from '../../src/config/schema.js';
import type { ZoneHealth } from '../../src/dns/zone-health.js';
import { PolicyEngine } from '../../src/policy/policy-engine.js';
import { STEPS } from '../../src/policy/steps.js';
import type { Verdict } from '../../src/policy/verdict.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { realDnsbl } from '../support/dnsbl.js';

// Addresses from the documentation ranges; a listed client, a clean one, one on each global list.
const LISTED = '192.0.2.66';
const CLEAN = '198.51.100.20';
const DENIED = '203.0.113.9';
const ACCEPTED = '203.0.113.5';
const BOTH = '203.0.113.77';

const healthy: ZoneHealth = { isEnforced: () => true };

function rules(over: Record<string, unknown> = {}): Rules {
  return RulesSchema.parse({
    hostname: 'mx.example.test',
    acceptedDomains: ['example.test'],
    listeners: [
      { name: 'internet', listen: '127.0.0.1:0', ipRestrictions: { default: 'grant', except: ['192.0.2.99', '198.18.0.0 255.255.255.0'] } },
      { name: 'partners', listen: '127.0.0.1:0', ipRestrictions: { default: 'deny', except: ['198.51.100.0/24'] } },
      { name: 'nofilter', listen: '127.0.0.1:0', filters: { connection: false, sender: true, recipient: true } },
      { name: 'nosender', listen: '127.0.0.1:0', filters: { connection: true, sender: false, recipient: false } },
      { name: 'submission', listen: '127.0.0.1:0', relayFrom: ['10.0.0.0/8'] },
    ],
    connectionFilter: {
      accept: [ACCEPTED, BOTH],
      deny: [DENIED, BOTH, '192.0.2.0/28'],
      exceptions: ['postmaster@example.test'],
      rules: [
        { name: 'Example BL', zone: 'bl.example.net', provider: 'Example', message: 'The IP address %0 was rejected by %1 via %2 (%3) 100%%' },
      ],
    },
    senderFilter: { blocked: ['spammer@bad.example', '*@spam.example', '@junk.example', '*@*.sub.example'], action: 'reject' },
    recipientFilter: { blocked: ['ceo@example.test'], rejectUnknown: true },
    directory: { addresses: ['alice@example.test', 'postmaster@example.test', 'ceo@example.test'] },
    harvest: { delayAfter: 2, delayMs: 500, disconnectAfter: 4 },
    ...over,
  });
}

let dns: TestDnsServer;
const q = (ip: string, zone: string): string => `${ip.split('.').reverse().join('.')}.${zone}`;

before(async () => {
  dns = await startDnsServer({
    records: {
      [q(LISTED, 'bl.example.net')]: { A: ['127.0.0.2'], TXT: ['see https://bl.example.net/lookup'] },
      [q(LISTED, 'codes.example.net')]: { A: ['127.0.0.4', '127.0.0.10'] },
      [q(BOTH, 'bl.example.net')]: { A: ['127.0.0.2'] },
      [q(ACCEPTED, 'bl.example.net')]: { A: ['127.0.0.2'] },
      [q(LISTED, 'slow.example.net')]: { A: ['127.0.0.2'], mode: 'blackhole' },
    },
  });
});
after(() => dns.close());

function engine(r: Rules, health: ZoneHealth = healthy): PolicyEngine {
  const d = realDnsbl(r, dns.address, health);
  return new PolicyEngine(r, d);
}

/** An engine that also records which client addresses it looked up, as the lookups start. */
function countingEngine(r: Rules): { engine: PolicyEngine; asked: string[] } {
  const d = realDnsbl(r, dns.address, healthy);
  const asked: string[] = [];
  const dnsbl = { lookup: (zone: string, ip: string) => (asked.push(ip), d.dnsbl.lookup(zone, ip)) };
  return { engine: new PolicyEngine(r, { ...d, dnsbl }), asked };
}

function expect(v: Verdict, action: Verdict['action'], code: number, enhanced: string, step?: number): void {
  assert.equal(v.action, action, JSON.stringify(v));
  assert.equal(v.code, code, JSON.stringify(v));
  assert.equal(v.enhanced, enhanced, JSON.stringify(v));
  if (step !== undefined) assert.equal(v.step, step, JSON.stringify(v));
}

describe('step 2: IP restrictions', () => {
  test('default grant refuses the listed address and the address+mask group, before anything else', () => {
    const e = engine(rules());
    expect(e.session('internet', '192.0.2.99').connect(), 'drop', 554, '5.7.1', 2);
    expect(e.session('internet', '198.18.0.44').connect(), 'drop', 554, '5.7.1', 2);
    expect(e.session('internet', CLEAN).connect(), 'accept', 220, '', 2);
  });

  test('default deny admits only the exceptions; an IPv4-mapped IPv6 client is its IPv4 address', () => {
    const e = engine(rules());
    expect(e.session('partners', '198.51.100.7').connect(), 'accept', 220, '');
    expect(e.session('partners', '::ffff:198.51.100.7').connect(), 'accept', 220, '');
    expect(e.session('partners', '192.0.2.1').connect(), 'drop', 554, '5.7.1');
    assert.equal(e.session('partners', '::ffff:198.51.100.7').clientIp, '198.51.100.7');
  });

  test('a refused client starts no DNSBL lookup; an admitted one starts them at connect', () => {
    const { engine: e, asked } = countingEngine(rules());
    e.session('internet', '192.0.2.99').connect();
    assert.deepEqual(asked, []);
    e.session('internet', CLEAN).connect();
    assert.deepEqual(asked, [CLEAN]);
  });
});

describe('steps 5-6: accept and deny lists act at MAIL FROM', () => {
  test('a client on the deny list costs the block lists no lookup', () => {
    const { engine: e, asked } = countingEngine(rules());
    e.session('internet', DENIED).connect();
    assert.deepEqual(asked, []);
  });

  test('the deny list does not act at connect, and drops at MAIL FROM with 550 5.7.1', () => {
    const s = engine(rules()).session('internet', DENIED);
    expect(s.connect(), 'accept', 220, '');
    expect(s.helo('spam.example'), 'accept', 250, '2.0.0', 3);
    const v = s.mailFrom('someone@example.org');
    expect(v, 'drop', 550, '5.7.1', 6);
    assert.match(v.text, /203\.0\.113\.9/);
  });

  test('an address on both lists is accepted: the accept list skips the deny list', () => {
    const s = engine(rules()).session('internet', BOTH);
    s.connect();
    expect(s.mailFrom('someone@example.org'), 'accept', 250, '2.1.0', 7);
  });

  test('the accept list skips DNSBL rules for the session (no query is even sent)', async () => {
    const before = dns.queries.filter((n) => n.startsWith(q(ACCEPTED, ''))).length;
    const s = engine(rules()).session('internet', ACCEPTED);
    s.connect();
    s.mailFrom('someone@example.org');
    expect(await s.rcptTo('alice@example.test'), 'accept', 250, '2.1.5');
    assert.equal(dns.queries.filter((n) => n.startsWith(q(ACCEPTED, ''))).length, before);
  });

  test('an accept-list hit is observed as a step 5 decision at each MAIL FROM (metrics and decision log), writing no reply', () => {
    const seen: Verdict[] = [];
    const s = engine(rules()).session('internet', ACCEPTED, (v) => seen.push(v));
    s.connect();
    expect(s.mailFrom('someone@example.org'), 'accept', 250, '2.1.0', 7);
    s.mailFrom('other@example.org');
    const step5 = seen.filter((v) => v.step === 5);
    assert.equal(step5.length, 2);
    assert.deepEqual({ ...step5[0] }, { action: 'accept', code: 0, enhanced: '', text: 'on the accept list: deny list and DNSBL rules skipped', step: 5, check: 'global accept list', rule: ACCEPTED });
    const clean: Verdict[] = [];
    const other = engine(rules()).session('internet', CLEAN, (v) => clean.push(v));
    other.connect();
    other.mailFrom('someone@example.org');
    assert.equal(clean.filter((v) => v.step === 5).length, 0, 'a client not on the list decides nothing at step 5');
  });

  test('sender and recipient filtering still apply to accept-listed clients', async () => {
    const s = engine(rules()).session('internet', ACCEPTED);
    s.connect();
    expect(s.mailFrom('spammer@bad.example'), 'reject', 550, '5.1.0', 7);
    s.mailFrom('ok@example.org');
    expect(await s.rcptTo('ceo@example.test'), 'reject', 550, '5.1.1', 11);
    expect(await s.rcptTo('nobody@example.test'), 'reject', 550, '5.1.1', 12);
  });
});

describe('step 7: sender filter on the envelope sender', () => {
  test('each pattern form matches, case-insensitively; others pass', () => {
    const s = engine(rules()).session('internet', CLEAN);
    s.connect();
    for (const a of ['spammer@bad.example', 'SPAMMER@Bad.Example', 'x@spam.example', 'y@junk.example', 'z@a.sub.example']) {
      expect(s.mailFrom(a), 'reject', 550, '5.1.0', 7);
    }
    expect(s.mailFrom('z@sub.example'), 'accept', 250, '2.1.0');
    expect(s.mailFrom('friend@bad.example'), 'accept', 250, '2.1.0');
  });

  test('the blank sender matches only when blankSender is on', () => {
    const off = engine(rules()).session('internet', CLEAN);
    off.connect();
    expect(off.mailFrom(''), 'accept', 250, '2.1.0');
    const on = engine(rules({ senderFilter: { blocked: [], blankSender: true } })).session('internet', CLEAN);
    on.connect();
    expect(on.mailFrom(''), 'reject', 550, '5.1.0', 7);
  });

  test('drop answers 550 5.1.0 and closes; archive answers normally and marks the transaction', () => {
    const drop = engine(rules({ senderFilter: { blocked: ['*@spam.example'], action: 'drop' } })).session('internet', CLEAN);
    drop.connect();
    expect(drop.mailFrom('a@spam.example'), 'drop', 550, '5.1.0', 7);
    const arch = engine(rules({ senderFilter: { blocked: ['*@spam.example'], action: 'archive' } })).session('internet', CLEAN);
    arch.connect();
    expect(arch.mailFrom('a@spam.example'), 'archive', 250, '2.1.0', 7);
    assert.equal(arch.archive?.step, 7);
    arch.resetTransaction();
    assert.equal(arch.archive, undefined);
  });
});

describe('step 9: DNSBL rules at RCPT TO', () => {
  test('a listed client is refused with the rule message and its placeholders', async () => {
    const s = engine(rules()).session('internet', LISTED);
    s.connect();
    expect(s.mailFrom('a@example.org'), 'accept', 250, '2.1.0');
    const v = await s.rcptTo('alice@example.test');
    expect(v, 'reject', 550, '5.7.1', 9);
    assert.equal(v.text, `The IP address ${LISTED} was rejected by Example BL via Example (see https://bl.example.net/lookup) 100%`);
    assert.equal(v.rule, 'Example BL');
  });

  test('lookups start at connect, once per zone per session, however many rules and recipients', async () => {
    const r = rules();
    r.connectionFilter.rules.push({ ...r.connectionFilter.rules[0]!, name: 'Same zone again' });
    const name = q('192.0.2.67', 'bl.example.net');
    const s = engine(r).session('internet', '192.0.2.67');
    s.connect();
    for (let i = 0; i < 50 && !dns.queries.includes(name); i++) await new Promise((res) => setTimeout(res, 10));
    assert.ok(dns.queries.includes(name), 'query sent at connect, before MAIL FROM');
    s.mailFrom('a@example.org');
    for (const rcpt of ['alice@example.test', 'postmaster@example.test', 'bob@example.test']) await s.rcptTo(rcpt);
    assert.equal(dns.queries.filter((n) => n === name).length, 1);
    const step9 = s.trace.filter((t) => t.step === 9).map((t) => t.outcome);
    assert.equal(step9.filter((o) => o === 'session verdict: no enforced rule matches').length, 2, `every later recipient shows its step 9 too: ${step9.join(' | ')}`);
  });

  test('with no DNSBL rule, step 9 is judged in the turn of the first RCPT TO (no promise) and traced as before', () => {
    const r = rules();
    r.connectionFilter.rules = [];
    const s = engine(r).session('internet', CLEAN);
    s.connect();
    s.mailFrom('a@example.org');
    const recipients = ['alice@example.test', 'postmaster@example.test'].map((rcpt) => s.rcptTo(rcpt));
    for (const v of recipients) {
      assert.ok(!(v instanceof Promise), 'nothing to wait for');
      expect(v as Verdict, 'accept', 250, '2.1.5');
    }
    const step9 = s.trace.filter((t) => t.step === 9).map((t) => t.outcome);
    assert.deepEqual(step9, ['no DNSBL rules configured', 'session verdict: no enforced rule matches']);
  });

  test('cached answers are judged in the turn of the first RCPT TO, with the verdict, decisions and trace of a session that waited', async () => {
    const r = rules();
    r.connectionFilter.rules = [
      { name: 'Trial', zone: 'codes.example.net', match: 'any', reportOnly: true, onError: 'accept' },
      { name: 'Example BL', zone: 'bl.example.net', match: 'any', reportOnly: false, onError: 'accept' },
    ];
    const d = realDnsbl(r, dns.address, healthy);
    // The same cache, with one zone's answers handed over as promises: a walk that must wait half-way.
    const halfWaiting = { lookup: (zone: string, ip: string) => (zone === 'bl.example.net' ? Promise.resolve(d.dnsbl.lookup(zone, ip)) : d.dnsbl.lookup(zone, ip)) };
    const run = (e: PolicyEngine): { rcpt: Verdict | Promise<Verdict>; seen: Verdict[]; trace: () => string[] } => {
      const seen: Verdict[] = [];
      const s = e.session('internet', LISTED, (v) => seen.push(v));
      s.connect();
      s.mailFrom('a@example.org');
      return { rcpt: s.rcptTo('alice@example.test'), seen, trace: () => s.trace.map((t) => `${t.step} ${t.check}: ${t.outcome}`) };
    };
    const first = run(new PolicyEngine(r, d));
    assert.ok(first.rcpt instanceof Promise, 'the first session waits for the zones');
    const firstVerdict = await first.rcpt;
    const cached = run(new PolicyEngine(r, d));
    assert.ok(!(cached.rcpt instanceof Promise), 'every answer cached: nothing to wait for');
    const half = run(new PolicyEngine(r, { ...d, dnsbl: halfWaiting }));
    assert.ok(half.rcpt instanceof Promise, 'one answer still a promise: the walk waits for it');
    const halfVerdict = await half.rcpt;
    for (const [v, x] of [[cached.rcpt as Verdict, cached], [halfVerdict, half]] as const) {
      assert.deepEqual(v, firstVerdict);
      assert.deepEqual(x.seen, first.seen, 'the same decisions observed, in the same order');
      assert.deepEqual(x.trace(), first.trace().map((line) => line.replace(/(\.net)\)/g, '$1 (cached))')));
    }
    expect(firstVerdict, 'reject', 550, '5.7.1', 9);
    assert.ok(first.seen.some((v) => v.reportOnly && v.rule === 'Trial'), 'the report-only match observed');
  });

  test('a session that forgot what it judged (no record kept) still applies its DNSBL verdict to the next message', async () => {
    const s = engine(rules()).session('internet', LISTED);
    s.connect();
    expect(s.mailFrom('a@example.org'), 'accept', 250, '2.1.0');
    expect(await s.rcptTo('alice@example.test'), 'reject', 550, '5.7.1', 9);
    s.resetTransaction();
    s.forgetJudged();
    assert.deepEqual([s.trace.length, s.events.length], [0, 0]);
    expect(s.mailFrom('b@example.org'), 'accept', 250, '2.1.0');
    expect(await s.rcptTo('alice@example.test'), 'reject', 550, '5.7.1', 9);
    assert.deepEqual(s.events.map((e) => e.kind), ['mail', 'rcpt'], 'only the new transaction is held');
  });

  test('first matching rule decides; a rule whose codes do not match lets the next one decide', async () => {
    const r = rules();
    r.connectionFilter.rules = [
      { name: 'Mask 6', zone: 'codes.example.net', match: { mask: '0.0.0.6' }, reportOnly: false, onError: 'accept' },
      { name: 'Exact 10', zone: 'codes.example.net', match: { codes: ['127.0.0.10'] }, reportOnly: false, onError: 'accept' },
      { name: 'Example BL', zone: 'bl.example.net', match: 'any', reportOnly: false, onError: 'accept' },
    ];
    const s = engine(r).session('internet', LISTED);
    s.connect();
    s.mailFrom('a@example.org');
    const v = await s.rcptTo('alice@example.test');
    expect(v, 'reject', 550, '5.7.1', 9);
    assert.equal(v.rule, 'Exact 10');
    assert.equal(v.text, `${LISTED} has been blocked by Exact 10`);
  });

  test('a report-only rule is observed but rejects nothing; the next enforced rule still decides', async () => {
    const r = rules();
    r.connectionFilter.rules = [
      { name: 'Trial', zone: 'codes.example.net', match: 'any', reportOnly: true, onError: 'accept' },
    ];
    const seen: Verdict[] = [];
    const s = engine(r).session('internet', LISTED, undefined);
    const observed = engine(r).session('internet', LISTED, (v) => seen.push(v));
    for (const x of [s, observed]) {
      x.connect();
      x.mailFrom('a@example.org');
      expect(await x.rcptTo('alice@example.test'), 'accept', 250, '2.1.5');
    }
    const trial = seen.find((v) => v.reportOnly);
    assert.ok(trial, 'report-only match observed');
    assert.equal(trial.code, 550);
    assert.equal(trial.rule, 'Trial');
    r.connectionFilter.rules.push({ name: 'Enforced', zone: 'bl.example.net', match: 'any', reportOnly: false, onError: 'accept' });
    const both = engine(r).session('internet', LISTED);
    both.connect();
    both.mailFrom('a@example.org');
    assert.equal((await both.rcptTo('alice@example.test')).rule, 'Enforced');
  });

  test('an unhealthy zone rejects nothing', async () => {
    const sick: ZoneHealth = { isEnforced: (zone) => zone !== 'bl.example.net' };
    const s = engine(rules(), sick).session('internet', LISTED);
    s.connect();
    s.mailFrom('a@example.org');
    expect(await s.rcptTo('alice@example.test'), 'accept', 250, '2.1.5');
    assert.ok(s.trace.some((t) => /unhealthy/.test(t.outcome)));
  });

  test('a lookup that times out is not a listing; a fail-closed rule answers 451 4.7.1', async () => {
    const r = rules({ dns: { timeoutMs: 200 } });
    r.connectionFilter.rules = [{ name: 'Slow', zone: 'slow.example.net', match: 'any', reportOnly: false, onError: 'accept' }];
    const open = engine(r).session('internet', LISTED);
    open.connect();
    open.mailFrom('a@example.org');
    const t0 = Date.now();
    expect(await open.rcptTo('alice@example.test'), 'accept', 250, '2.1.5');
    assert.ok(Date.now() - t0 < 1000);
    r.connectionFilter.rules[0]!.onError = 'tempfail';
    const closed = engine(r).session('internet', LISTED);
    closed.connect();
    closed.mailFrom('a@example.org');
    expect(await closed.rcptTo('alice@example.test'), 'tempfail', 451, '4.7.1', 9);
    const unhealthy = engine(r, { isEnforced: () => false }).session('internet', LISTED);
    unhealthy.connect();
    unhealthy.mailFrom('a@example.org');
    expect(await unhealthy.rcptTo('alice@example.test'), 'accept', 250, '2.1.5');
    assert.ok(unhealthy.trace.some((t) => t.step === 9 && /unhealthy: not enforced/.test(t.outcome)), 'an unhealthy zone does not fail closed');
  });
});

describe('step 10: exception recipients', () => {
  test('an exception is accepted despite a DNSBL match, and skips steps 11-12', async () => {
    const r = rules({ recipientFilter: { blocked: ['postmaster@example.test'], rejectUnknown: true }, directory: { addresses: [] } });
    const s = engine(r).session('internet', LISTED);
    s.connect();
    s.mailFrom('a@example.org');
    const v = await s.rcptTo('postmaster@example.test');
    expect(v, 'accept', 250, '2.1.5', 10);
    assert.ok(!s.trace.some((t) => t.step === 11 || t.step === 12));
    expect(await s.rcptTo('alice@example.test'), 'reject', 550, '5.7.1', 9);
  });
});

describe('steps 11-12: recipient filter and directory', () => {
  test('blocked and unknown recipients get the same 550 5.1.1', async () => {
    const s = engine(rules()).session('internet', CLEAN);
    s.connect();
    s.mailFrom('a@example.org');
    const blocked = await s.rcptTo('ceo@example.test');
    const unknown = await s.rcptTo('ghost@example.test');
    expect(blocked, 'reject', 550, '5.1.1', 11);
    expect(unknown, 'reject', 550, '5.1.1', 12);
    assert.equal(blocked.text.replace('ceo', 'X'), unknown.text.replace('ghost', 'X'));
    expect(await s.rcptTo('Alice@EXAMPLE.test'), 'accept', 250, '2.1.5');
  });

  test('with rejectUnknown off, unknown recipients are accepted', async () => {
    const s = engine(rules({ recipientFilter: { blocked: [], rejectUnknown: false } })).session('internet', CLEAN);
    s.connect();
    s.mailFrom('a@example.org');
    expect(await s.rcptTo('ghost@example.test'), 'accept', 250, '2.1.5');
  });
});

describe('a listener with connection filtering off', () => {
  test('skips the accept list, deny list, DNSBL rules and exceptions; sender and recipient filters still apply', async () => {
    const e = engine(rules());
    const denied = e.session('nofilter', DENIED);
    denied.connect();
    expect(denied.mailFrom('a@example.org'), 'accept', 250, '2.1.0');
    const listed = e.session('nofilter', LISTED);
    listed.connect();
    listed.mailFrom('a@example.org');
    expect(await listed.rcptTo('alice@example.test'), 'accept', 250, '2.1.5');
    expect(listed.mailFrom('x@spam.example'), 'reject', 550, '5.1.0');
    const r = rules({ directory: { addresses: [] } });
    const ex = engine(r).session('nofilter', CLEAN);
    ex.connect();
    ex.mailFrom('a@example.org');
    expect(await ex.rcptTo('postmaster@example.test'), 'reject', 550, '5.1.1', 12);
  });

  test('sender filtering off skips steps 7 and 15', () => {
    const s = engine(rules()).session('nosender', CLEAN);
    s.connect();
    expect(s.mailFrom('x@spam.example'), 'accept', 250, '2.1.0');
    expect(s.headerFrom('x@spam.example'), 'relay', 0, '', 15);
  });
});

describe('relay protection, before step 9', () => {
  test('remote recipients are refused with 550 5.7.1 Unable to relay, before DNSBL and exceptions', async () => {
    const r = rules();
    r.connectionFilter.exceptions.push('*@partner.example');
    const s = engine(r).session('internet', LISTED);
    s.connect();
    s.mailFrom('a@example.org');
    for (const a of ['someone@partner.example', 'user%other.example@example.test', '@example.test:user@other.example', 'other.example!user@example.test', '"user@other.example"@example.test']) {
      const v = await s.rcptTo(a);
      expect(v, 'reject', 550, '5.7.1', 8);
      assert.equal(v.text, 'Unable to relay', a);
    }
  });

  test('a client on the relay list may send to any domain', async () => {
    const s = engine(rules()).session('submission', '10.1.2.3');
    s.connect();
    s.mailFrom('a@example.test');
    expect(await s.rcptTo('someone@partner.example'), 'accept', 250, '2.1.5');
    expect(await s.rcptTo('user%x@example.test'), 'accept', 250, '2.1.5');
  });
});

describe('step 15: sender filter on the header From:', () => {
  test('reject, drop and archive, each as configured', () => {
    for (const [action, code, enhanced] of [['reject', 550, '5.1.0'], ['drop', 550, '5.1.0'], ['archive', 250, '2.6.0']] as const) {
      const s = engine(rules({ senderFilter: { blocked: ['*@spam.example'], action } })).session('internet', CLEAN);
      s.connect();
      s.mailFrom('innocent@example.org');
      expect(s.headerFrom('boss@spam.example'), action, code, enhanced, 15);
      expect(s.headerFrom('friend@example.org'), action === 'archive' ? 'archive' : 'relay', action === 'archive' ? 250 : 0, action === 'archive' ? '2.6.0' : '', 15);
    }
  });

  test('a transaction archived at step 7 stays archived at step 15', () => {
    const s = engine(rules({ senderFilter: { blocked: ['*@spam.example'], action: 'archive' } })).session('internet', CLEAN);
    s.connect();
    s.mailFrom('a@spam.example');
    const v = s.headerFrom(undefined);
    expect(v, 'archive', 250, '2.6.0', 15);
    assert.equal(s.archive?.step, 7);
  });
});

describe('harvest protection', () => {
  test('slows after delayAfter invalid recipients, disconnects with 421 4.7.0 after disconnectAfter', async () => {
    const s = engine(rules()).session('internet', CLEAN);
    s.connect();
    s.mailFrom('a@example.org');
    const replies: Verdict[] = [];
    for (let i = 0; i < 5; i++) replies.push(await s.rcptTo(`ghost${i}@example.test`));
    assert.deepEqual(replies.map((v) => [v.code, v.delayMs ?? 0]), [[550, 0], [550, 0], [550, 500], [550, 500], [421, 0]]);
    expect(replies[4]!, 'drop', 421, '4.7.0');
  });
});

describe('step 12 uses the same directory as the bundled engine', () => {
  test('aliases, groups and proxy addresses exist for the edge too; unknown ones do not', async () => {
    const r = rules({
      directory: {
        addresses: ['postmaster@example.test'],
        mailboxes: [{ address: 'alice@example.test', proxyAddresses: ['a.smith@example.test'] }],
        aliases: [{ address: 'sales@example.test', forwardTo: ['bob@partner.example'] }],
        groups: [{ address: 'team@example.test', members: ['alice@example.test'] }],
      },
    });
    const s = engine(r).session('internet', CLEAN);
    s.connect();
    s.mailFrom('a@example.org');
    for (const a of ['alice@example.test', 'a.smith@example.test', 'sales@example.test', 'team@example.test']) {
      expect(await s.rcptTo(a), 'accept', 250, '2.1.5');
    }
    expect(await s.rcptTo('ghost@example.test'), 'reject', 550, '5.1.1', 12);
  });
});

describe('step numbers and check names come from one table', () => {
  test('every trace line and every verdict of sessions through all the steps names a step of the table', async () => {
    const known = new Set(Object.values(STEPS).map((s) => `${s.step} ${s.check}`));
    const e = engine(rules());
    const sessions: [string, string, string, string[], string | undefined][] = [
      ['internet', '192.0.2.99', 'a@example.org', [], undefined],
      ['internet', DENIED, 'a@example.org', [], undefined],
      ['internet', LISTED, 'a@example.org', ['alice@example.test', 'postmaster@example.test', 'x@elsewhere.test'], 'a@example.org'],
      ['internet', ACCEPTED, 'spammer@bad.example', ['alice@example.test'], undefined],
      ['internet', CLEAN, 'a@example.org', ['ceo@example.test', 'n1@example.test', 'n2@example.test', 'n3@example.test', 'n4@example.test'], undefined],
      ['nofilter', CLEAN, 'a@example.org', ['alice@example.test'], 'boss@spam.example'],
      ['nosender', CLEAN, 'a@example.org', ['alice@example.test'], 'boss@spam.example'],
      ['submission', '10.1.2.3', 'a@example.org', ['x@elsewhere.test'], undefined],
    ];
    const seen = new Set<string>();
    for (const [listener, ip, from, to, headerFrom] of sessions) {
      const s = e.session(listener, ip, (v) => {
        assert.ok(known.has(`${v.step} ${v.check}`), `verdict ${v.step} ${v.check}`);
      });
      if (s.connect().action === 'drop') continue;
      s.helo('client.example.org');
      if (s.mailFrom(from).action !== 'drop') {
        for (const r of to) if ((await s.rcptTo(r)).action === 'drop') break;
        s.headerFrom(headerFrom);
      }
      for (const t of s.trace) {
        assert.ok(known.has(`${t.step} ${t.check}`), `trace ${t.step} ${t.check}`);
        seen.add(t.check);
      }
    }
    assert.ok(seen.size >= 11, [...seen].join(', '));
  });
});
