import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { DnsClient } from '../../src/dns/client.js';
import { RemoteDelivery, type RemoteDeliveryOptions } from '../../src/transport/remote-delivery.js';
import type { Route } from '../../src/transport/router.js';
import type { Envelope, EnvelopeRecipient } from '../../src/transport/types.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { ManualClock } from './engine-harness.js';
import { freePort, startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';

let dir: string;
let contentPath: string;
let dnsServer: TestDnsServer;
let sink: SmtpSink;
const BODY = 'From: sender@origin.test\r\nTo: someone@dest.test\r\nSubject: remote test\r\n\r\nHello remote.\r\n.leading dot\r\n';

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-remote-'));
  contentPath = path.join(dir, 'msg.eml');
  await writeFile(contentPath, BODY);
  dnsServer = await startDnsServer();
  sink = await startSmtpSink();
});

after(async () => {
  await sink.stop();
  await dnsServer.close();
  await rm(dir, { recursive: true, force: true });
});

function delivery(extra: Partial<RemoteDeliveryOptions> = {}): RemoteDelivery {
  return new RemoteDelivery({
    hostname: 'engine.example.com',
    dns: new DnsClient({ servers: [dnsServer.address], timeoutMs: 2000 }),
    timeoutMs: 5000, maxConnections: 10, maxPerDomain: 5, port: 25, ...extra,
  });
}

function envelope(recipients: EnvelopeRecipient[], extra: Partial<Envelope> = {}): Envelope {
  return { id: 'Q1', mailFrom: 'sender@origin.test', recipients, size: BODY.length, receivedAt: Date.now(), ...extra };
}

/** Polls the sink (bounded, 5 s) until it holds at least `n` transactions. */
async function sinkTransactions(n: number): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const t = await sink.transactions();
    if (t.length >= n) return t;
    await new Promise((r) => setTimeout(r, 50));
  }
  return sink.transactions();
}

/** A real smtp-server on 127.0.0.1:0 with the given handlers; records what it saw. */
async function startServer(options: SMTPServerOptions): Promise<{ port: number; server: SMTPServer; close: () => Promise<void> }> {
  const server = new SMTPServer({ disabledCommands: ['AUTH'], logger: false, ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as net.AddressInfo).port;
  return { port, server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('smart host: Postfix smtp-sink receives the message with RET/ENVID/NOTIFY/ORCPT passed on', async () => {
  const before = (await sink.transactions()).length;
  const route: Route = { kind: 'smarthost', connector: 'relay', hosts: [`127.0.0.1:${sink.port}`] };
  const recipients: EnvelopeRecipient[] = [
    { address: 'one@dest.test', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;list@example.com' },
    { address: 'two@dest.test' },
    { address: 'three@dest.test' },
  ];
  const results = await delivery().deliver(route, envelope(recipients, { ret: 'HDRS', envid: 'ENV+1' }), recipients, contentPath);
  assert.deepEqual(results.map((r) => [r.address, r.outcome, r.code]), [
    ['one@dest.test', 'delivered', 250], ['two@dest.test', 'delivered', 250], ['three@dest.test', 'delivered', 250],
  ]);
  assert.equal(results[0]!.remoteMta, '127.0.0.1');
  const got = (await sinkTransactions(before + 2)).slice(before).join('\n=====\n');
  assert.match(got, /X-Mail-Args: <sender@origin.test> .*RET=HDRS/);
  assert.match(got, /X-Mail-Args: .*ENVID=ENV\+2B1/);
  assert.match(got, /X-Rcpt-Args: <one@dest.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;list@example.com/);
  assert.match(got, /X-Rcpt-Args: <two@dest.test>\nX-Rcpt-Args: <three@dest.test>/);
  assert.match(got, /Subject: remote test\r?\n\r?\nHello remote.\r?\n.leading dot/);
});

test('MX: lowest preference first; an unreachable first MX falls through to the next one', async () => {
  dnsServer.setRecords({
    'dest.test': { MX: [{ exchange: 'mx-b.dest.test', preference: 20 }, { exchange: 'mx-a.dest.test', preference: 10 }] },
    'mx-a.dest.test': { AAAA: ['::1'] },
    'mx-b.dest.test': { A: ['127.0.0.1'] },
    'direct.test': { MX: [{ exchange: 'mx-b.dest.test', preference: 5 }, { exchange: 'mx-a.dest.test', preference: 50 }] },
  });
  const d = delivery({ port: sink.port });
  const r1 = await d.deliver({ kind: 'mx', connector: null, domain: 'dest.test' }, envelope([{ address: 'x@dest.test' }]), [{ address: 'x@dest.test' }], contentPath);
  assert.deepEqual([r1[0]!.outcome, r1[0]!.remoteMta], ['delivered', 'mx-b.dest.test']);
  const asked = dnsServer.questions.map((q) => `${q.type} ${q.name}`);
  const at = (q: string): number => {
    const i = asked.indexOf(q);
    assert.ok(i >= 0, `${q} was asked (asked: ${asked.join(', ')})`);
    return i;
  };
  assert.ok(at('MX dest.test') < at('AAAA mx-a.dest.test'));
  assert.ok(at('A mx-a.dest.test') < at('A mx-b.dest.test'), 'preference 10 looked up before 20');
  const r2 = await d.deliver({ kind: 'mx', connector: null, domain: 'direct.test' }, envelope([{ address: 'y@direct.test' }]), [{ address: 'y@direct.test' }], contentPath);
  assert.deepEqual([r2[0]!.outcome, r2[0]!.remoteMta], ['delivered', 'mx-b.dest.test']);
  const all = await sinkTransactions(1);
  assert.ok(all.some((t) => t.includes('X-Rcpt-Args: <x@dest.test>')));
});

test('sessions are reused for the next message to the same host, after RSET; one the server has closed is replaced', async () => {
  let connections = 0;
  let messages = 0;
  const srv = await startServer({
    onConnect(_session, cb) {
      connections++;
      cb();
    },
    onData(stream, _session, cb) {
      stream.resume();
      stream.on('end', () => {
        messages++;
        cb();
      });
    },
  });
  const d = delivery();
  const route: Route = { kind: 'smarthost', connector: 'reuse', hosts: [`127.0.0.1:${srv.port}`] };
  const send = (n: number) => d.deliver(route, envelope([{ address: `r${n}@dest.test` }]), [{ address: `r${n}@dest.test` }], contentPath);
  try {
    for (let i = 0; i < 3; i++) assert.equal((await send(i))[0]!.outcome, 'delivered');
    assert.deepEqual({ connections, messages }, { connections: 1, messages: 3 }, 'three messages over one session');

    // The server drops its idle sessions: the next message finds out at RSET and connects afresh.
    const open = (srv.server as unknown as { connections: Set<{ close(): void }> }).connections;
    for (const c of open) c.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await send(3))[0]!.outcome, 'delivered');
    assert.deepEqual({ connections, messages }, { connections: 2, messages: 4 });
  } finally {
    d.close();
    await srv.close();
  }
});

test('MX cache: a second message to the domain asks DNS nothing until the shortest TTL has passed; a SERVFAIL is not kept', async () => {
  dnsServer.setRecords({
    'cached.test': { MX: [{ exchange: 'mx.cached.test', preference: 10 }], ttl: 60 },
    'mx.cached.test': { A: ['127.0.0.1'], ttl: 30 },
    'flaky.test': { mode: 'servfail' },
  });
  const clock = new ManualClock();
  const d = delivery({ port: sink.port, clock });
  const asked = (name: string): number => dnsServer.questions.filter((q) => q.name === name).length;
  const send = (domain: string) => d.deliver({ kind: 'mx', connector: null, domain }, envelope([{ address: `u@${domain}` }]), [{ address: `u@${domain}` }], contentPath);

  // Three at once share the questions; one more a little later asks nothing.
  const first = await Promise.all([send('cached.test'), send('cached.test'), send('cached.test')]);
  assert.deepEqual(first.map((r) => r[0]!.outcome), ['delivered', 'delivered', 'delivered']);
  clock.advance(29_000);
  assert.equal((await send('cached.test'))[0]!.outcome, 'delivered');
  assert.equal(asked('cached.test'), 1, 'MX asked once');
  assert.equal(asked('mx.cached.test'), 2, 'A and AAAA asked once each');

  // Past the A record's 30 s it is asked again; the MX (60 s) and the empty AAAA answer (the SOA's 60 s) are still kept.
  clock.advance(2_000);
  assert.equal((await send('cached.test'))[0]!.outcome, 'delivered');
  assert.equal(asked('cached.test'), 1);
  assert.deepEqual(dnsServer.questions.filter((q) => q.name === 'mx.cached.test').map((q) => q.type), ['A', 'AAAA', 'A']);

  assert.equal((await send('flaky.test'))[0]!.enhanced, '4.4.3');
  assert.equal((await send('flaky.test'))[0]!.enhanced, '4.4.3');
  assert.equal(asked('flaky.test'), 2, 'a SERVFAIL is asked again');
});

test('MX: no MX record means the domain itself (A); NXDOMAIN fails 5.4.0; SERVFAIL defers 4.4.3', async () => {
  dnsServer.setRecords({
    'bare.test': { A: ['127.0.0.1'] },
    'broken.test': { mode: 'servfail' },
  });
  const d = delivery({ port: sink.port });
  const deliverTo = (domain: string) => d.deliver({ kind: 'mx', connector: null, domain }, envelope([{ address: `u@${domain}` }]), [{ address: `u@${domain}` }], contentPath);
  const bare = await deliverTo('bare.test');
  assert.deepEqual([bare[0]!.outcome, bare[0]!.remoteMta], ['delivered', 'bare.test']);
  const missing = await deliverTo('missing.test');
  assert.deepEqual([missing[0]!.outcome, missing[0]!.code, missing[0]!.enhanced], ['failed', 550, '5.4.0']);
  const broken = await deliverTo('broken.test');
  assert.deepEqual([broken[0]!.outcome, broken[0]!.enhanced], ['deferred', '4.4.3']);
});

test('a real server answering 4xx then 250, and 5xx: deferred, then delivered; failed at once; STARTTLS used', async () => {
  const seen: { to: string; secure: boolean }[] = [];
  let softTries = 0;
  const srv = await startServer({
    onRcptTo(address, session, cb) {
      if (address.address === 'soft@dest.test' && softTries++ === 0) {
        cb(Object.assign(new Error('4.3.0 Try again later'), { responseCode: 451 }));
        return;
      }
      if (address.address === 'hard@dest.test') {
        cb(Object.assign(new Error('5.1.1 No such user here'), { responseCode: 550 }));
        return;
      }
      seen.push({ to: address.address, secure: session.secure });
      cb();
    },
    onData(stream, _session, cb) {
      stream.resume();
      stream.on('end', () => cb());
    },
  });
  try {
    const route: Route = { kind: 'smarthost', connector: 'peer', hosts: [`127.0.0.1:${srv.port}`] };
    const rcpts = [{ address: 'soft@dest.test' }, { address: 'hard@dest.test' }, { address: 'ok@dest.test' }];
    const first = await delivery().deliver(route, envelope(rcpts), rcpts, contentPath);
    assert.deepEqual(first.map((r) => [r.address, r.outcome, r.code, r.enhanced]), [
      ['soft@dest.test', 'deferred', 451, '4.3.0'],
      ['hard@dest.test', 'failed', 550, '5.1.1'],
      ['ok@dest.test', 'delivered', 250, '2.0.0'],
    ]);
    assert.match(first[1]!.text, /No such user here/);
    const retry = await delivery().deliver(route, envelope([rcpts[0]!]), [rcpts[0]!], contentPath);
    assert.deepEqual(retry.map((r) => [r.outcome, r.code]), [['delivered', 250]]);
    assert.deepEqual(seen, [{ to: 'ok@dest.test', secure: true }, { to: 'soft@dest.test', secure: true }]);
  } finally {
    await srv.close();
  }
});

test('refused at the end of DATA: accepted recipients get that reply, ones refused at RCPT keep theirs', async () => {
  const srv = await startServer({
    onRcptTo(address, _s, cb) {
      if (address.address === 'gone@dest.test') cb(Object.assign(new Error('5.1.1 Gone'), { responseCode: 550 }));
      else cb();
    },
    onData(stream, _s, cb) {
      stream.resume();
      stream.on('end', () => cb(Object.assign(new Error('5.7.1 Message content rejected'), { responseCode: 554 })));
    },
  });
  try {
    const route: Route = { kind: 'smarthost', connector: 'peer', hosts: [`127.0.0.1:${srv.port}`] };
    const rcpts = [{ address: 'gone@dest.test' }, { address: 'here@dest.test' }];
    const r = await delivery().deliver(route, envelope(rcpts), rcpts, contentPath);
    assert.deepEqual(r.map((x) => [x.address, x.outcome, x.code, x.enhanced]), [
      ['gone@dest.test', 'failed', 550, '5.1.1'],
      ['here@dest.test', 'failed', 554, '5.7.1'],
    ]);
  } finally {
    await srv.close();
  }
});

test('requireTls: a server without STARTTLS defers 4.7.10 and gets no message', async () => {
  let mails = 0;
  const srv = await startServer({ disabledCommands: ['AUTH', 'STARTTLS'], hideSTARTTLS: true, onMailFrom(_a, _s, cb) { mails++; cb(); } });
  try {
    const route: Route = { kind: 'smarthost', connector: 'peer', hosts: [`127.0.0.1:${srv.port}`] };
    const r = await delivery({ requireTls: true }).deliver(route, envelope([{ address: 'a@dest.test' }]), [{ address: 'a@dest.test' }], contentPath);
    assert.deepEqual([r[0]!.outcome, r[0]!.enhanced], ['deferred', '4.7.10']);
    assert.equal(mails, 0);
    const plain = await delivery().deliver(route, envelope([{ address: 'a@dest.test' }]), [{ address: 'a@dest.test' }], contentPath);
    assert.equal(plain[0]!.outcome, 'delivered');
  } finally {
    await srv.close();
  }
});

test('nobody listening: deferred 4.4.1 after trying every smart host', async () => {
  const dead1 = await freePort();
  const dead2 = await freePort();
  const route: Route = { kind: 'smarthost', connector: 'peer', hosts: [`127.0.0.1:${dead1}`, `127.0.0.1:${dead2}`] };
  const r = await delivery().deliver(route, envelope([{ address: 'a@dest.test' }]), [{ address: 'a@dest.test' }], contentPath);
  assert.deepEqual([r[0]!.outcome, r[0]!.code, r[0]!.enhanced], ['deferred', 451, '4.4.1']);
  assert.match(r[0]!.text, new RegExp(`${dead1}.*${dead2}`));
});

test('a host that closes the connection before its greeting is no session: the next smart host takes the message', async () => {
  const mute = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
  const server = await startServer({ onData(stream, _s, cb) { stream.resume(); stream.on('end', () => cb()); } });
  try {
    const mutePort = (mute.address() as net.AddressInfo).port;
    const route: Route = { kind: 'smarthost', connector: 'peer', hosts: [`127.0.0.1:${mutePort}`, `127.0.0.1:${server.port}`] };
    const r = await delivery().deliver(route, envelope([{ address: 'a@dest.test' }]), [{ address: 'a@dest.test' }], contentPath);
    assert.deepEqual([r[0]!.outcome, r[0]!.code], ['delivered', 250]);
    const alone = await delivery().deliver({ ...route, hosts: [`127.0.0.1:${mutePort}`] }, envelope([{ address: 'a@dest.test' }]), [{ address: 'a@dest.test' }], contentPath);
    assert.deepEqual([alone[0]!.outcome, alone[0]!.enhanced], ['deferred', '4.4.1'], 'alone, it is a host that answers nobody');
  } finally {
    await server.close();
    await new Promise<void>((resolve) => mute.close(() => resolve()));
  }
});

test('an accepted recipient says whether the host offered DSN (so NOTIFY went on with it); refusals keep the exact address sent', async () => {
  const plain = await startServer({ onData(stream, _s, cb) { stream.resume(); stream.on('end', () => cb()); } });
  const withDsn = await startServer({ hideDSN: false, onData(stream, _s, cb) { stream.resume(); stream.on('end', () => cb()); } });
  const picky = await startServer({
    onRcptTo(a, _s, cb) { cb(a.address === 'Jo@dest.test' ? Object.assign(new Error('No such user'), { responseCode: 550 }) : undefined); },
    onData(stream, _s, cb) { stream.resume(); stream.on('end', () => cb()); },
  });
  try {
    const to = [{ address: 'a@dest.test', notify: ['SUCCESS' as const] }];
    const route = (port: number): Route => ({ kind: 'smarthost', connector: 'peer', hosts: [`127.0.0.1:${port}`] });
    assert.equal((await delivery().deliver(route(plain.port), envelope(to), to, contentPath))[0]?.nextHopDsn, false);
    assert.equal((await delivery().deliver(route(withDsn.port), envelope(to), to, contentPath))[0]?.nextHopDsn, true);
    const twins = [{ address: 'Jo@dest.test' }, { address: 'jo@dest.test' }];
    const r = await delivery().deliver(route(picky.port), envelope(twins), twins, contentPath);
    assert.deepEqual(r.map((x) => [x.address, x.outcome]), [['Jo@dest.test', 'failed'], ['jo@dest.test', 'delivered']]);
  } finally {
    await plain.close();
    await withDsn.close();
    await picky.close();
  }
});

test('connection dropped in the middle of DATA: deferred 4.4.2', async () => {
  const server = net.createServer((socket) => {
    socket.write('220 dropper ESMTP\r\n');
    let inData = false;
    socket.on('data', (chunk) => {
      if (inData) {
        socket.destroy();
        return;
      }
      for (const line of chunk.toString().split('\r\n').filter(Boolean)) {
        if (/^EHLO/i.test(line)) socket.write('250-dropper\r\n250 PIPELINING\r\n');
        else if (/^(MAIL|RCPT)/i.test(line)) socket.write('250 2.1.0 Ok\r\n');
        else if (/^DATA/i.test(line)) {
          inData = true;
          socket.write('354 go ahead\r\n');
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const route: Route = { kind: 'smarthost', connector: 'peer', hosts: [`127.0.0.1:${port}`] };
    const r = await delivery().deliver(route, envelope([{ address: 'a@dest.test' }, { address: 'b@dest.test' }]), [{ address: 'a@dest.test' }, { address: 'b@dest.test' }], contentPath);
    assert.deepEqual(r.map((x) => [x.outcome, x.enhanced]), [['deferred', '4.4.2'], ['deferred', '4.4.2']]);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('connection limits: never more than maxPerDomain to one destination, nor maxConnections in all', async () => {
  let open = 0;
  let peak = 0;
  const srv = await startServer({
    onConnect(_s, cb) { open++; peak = Math.max(peak, open); cb(); },
    onClose() { open--; },
    onData(stream, _s, cb) {
      stream.resume();
      stream.on('end', () => setTimeout(() => cb(), 100));
    },
  });
  try {
    const d = delivery({ maxPerDomain: 1, maxConnections: 2 });
    const rcpt = [{ address: 'a@dest.test' }];
    const same: Route = { kind: 'smarthost', connector: 'one', hosts: [`127.0.0.1:${srv.port}`] };
    const results = await Promise.all([1, 2, 3].map(() => d.deliver(same, envelope(rcpt), rcpt, contentPath)));
    assert.deepEqual(results.map((r) => r[0]!.outcome), ['delivered', 'delivered', 'delivered']);
    assert.equal(peak, 1);
    peak = 0;
    const routes: Route[] = ['c1', 'c2', 'c3', 'c4'].map((connector) => ({ kind: 'smarthost', connector, hosts: [`127.0.0.1:${srv.port}`] }));
    const spread = await Promise.all(routes.map((route) => d.deliver(route, envelope(rcpt), rcpt, contentPath)));
    assert.ok(spread.every((r) => r[0]!.outcome === 'delivered'));
    assert.equal(peak, 2);
  } finally {
    await srv.close();
  }
});

test('a route with no destination hands every recipient its result', async () => {
  const route: Route = { kind: 'none', result: { address: '', outcome: 'failed', code: 550, enhanced: '5.4.4', text: 'No route' } };
  const r = await delivery().deliver(route, envelope([{ address: 'a@x.test' }, { address: 'b@x.test' }]), [{ address: 'a@x.test' }, { address: 'b@x.test' }], contentPath);
  assert.deepEqual(r.map((x) => [x.address, x.enhanced]), [['a@x.test', '5.4.4'], ['b@x.test', '5.4.4']]);
});

test('a queued content file that cannot be read defers 4.3.0 and sends nothing', async () => {
  const before = (await sink.transactions()).length;
  const route: Route = { kind: 'smarthost', connector: 'relay', hosts: [`127.0.0.1:${sink.port}`] };
  const r = await delivery().deliver(route, envelope([{ address: 'a@dest.test' }]), [{ address: 'a@dest.test' }], path.join(dir, 'missing.eml'));
  assert.deepEqual([r[0]!.outcome, r[0]!.enhanced], ['deferred', '4.3.0']);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await sink.transactions()).length, before);
});
