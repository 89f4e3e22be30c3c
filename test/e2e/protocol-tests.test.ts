/**
 * Postscreen-style protocol tests at the door (docs/protocol-tests.md), over raw sockets on loopback:
 * the pre-greeting test (step 1) and its cache, unauthorised pipelining (step 1.1), and the HELO
 * checks (step 3) with a real DNS server for forward-confirmed reverse DNS.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer, type TestRecords } from '../support/dns-server.js';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { run } from '../interop/peers.js';
import { edgeRefusal } from '../support/smtp-client.js';

const PAUSE_MS = 300;

function withListener(settings: Record<string, unknown>): (r: Record<string, unknown>) => void {
  return (r) => {
    r.listeners = [{ name: 'main', listen: '127.0.0.1:0', ...settings }];
  };
}

async function protocolMetric(h: Harness, test: string, result: string): Promise<number> {
  return sample(await h.metrics.render(), 'portcullis_protocol_tests_total', { test, result });
}

describe('pre-greeting test', () => {
  it('a client that talks before the greeting ends gets 554 5.5.1 and is closed; its command is never answered', async () => {
    const h = await startHarness(withListener({ protocolTests: { greetPauseMs: PAUSE_MS } }));
    try {
      const c = await h.connect();
      c.write('EHLO bot.example\r\nMAIL FROM:<bot@bot.example>\r\n');
      const r = await c.read();
      assert.equal(r.lines[0], 'edge.test ESMTP');
      assert.match(r.line, edgeRefusal('554 5.5.1 Protocol error'));
      assert.match(c.transcript, /^220-edge\.test ESMTP\r\n554 5\.5\.1 Protocol error \[[0-9a-v]{16}\]\r\n$/, 'nothing else was written: no 250 to its EHLO');
      assert.equal(await c.closedByServer(), true);
      assert.equal(await protocolMetric(h, 'pre-greeting', 'fail'), 1);
      assert.equal(sample(await h.metrics.render(), 'portcullis_verdicts_total', { step: '1', check: 'pre-greeting test', action: 'drop' }), 1);
    } finally {
      await h.close();
    }
  });

  it('a patient client gets the teaser, the pause, then the greeting; next time, from the same address, the greeting at once', async () => {
    const h = await startHarness(withListener({ protocolTests: { greetPauseMs: PAUSE_MS, cacheTtlSec: 60 } }));
    try {
      const started = Date.now();
      const c = await h.connect();
      const greeting = await c.read();
      const waited = Date.now() - started;
      assert.equal(greeting.code, 220);
      assert.equal(c.transcript, '220-edge.test ESMTP\r\n220 edge.test ESMTP\r\n');
      assert.ok(waited >= PAUSE_MS - 20, `greeted after ${waited} ms, not before the pause ended`);
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
      c.quit();
      const again = await h.connect();
      assert.equal((await again.read()).code, 220);
      assert.equal(again.transcript, '220 edge.test ESMTP\r\n', 'no teaser, no pause: the pass was remembered');
      again.quit();
      assert.equal(await protocolMetric(h, 'pre-greeting', 'pass'), 1);
      assert.equal(await protocolMetric(h, 'pre-greeting', 'cached'), 1);
    } finally {
      await h.close();
    }
  });

  it('off by default: the greeting comes at once, a client that talks first is not refused by this test', async () => {
    const h = await startHarness();
    try {
      const c = await h.connect();
      assert.equal((await c.read()).line, '220 edge.test ESMTP');
      c.quit();
      assert.equal(await protocolMetric(h, 'pre-greeting', 'pass'), 0);
    } finally {
      await h.close();
    }
  });
});

describe('unauthorised pipelining', () => {
  const pipelining = withListener({ protocolTests: { pipelining: true } });

  it('a MAIL FROM sent before the EHLO reply: 554 5.5.1, closed', async () => {
    const h = await startHarness(pipelining);
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      c.write('EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\n');
      assert.match((await c.read()).line, edgeRefusal('554 5.5.1 Protocol error'));
      assert.equal(await c.closedByServer(), true);
      assert.equal(await protocolMetric(h, 'pipelining', 'fail'), 1);
    } finally {
      await h.close();
    }
  });

  it('the message sent after DATA before 354: 554 5.5.1, closed, and nothing reaches the back end', async () => {
    const h = await startHarness(pipelining);
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<bob@example.com>')).code, 250);
      c.write('DATA\r\nSubject: early\r\n\r\nbody\r\n.\r\n');
      assert.match((await c.read()).line, edgeRefusal('554 5.5.1 Protocol error'));
      assert.equal(await c.closedByServer(), true);
      assert.equal(h.backend.messages.length, 0);
    } finally {
      await h.close();
    }
  });

  it('commands pipelined after HELO (no PIPELINING offered): refused; the same after EHLO: accepted', async () => {
    const h = await startHarness(pipelining);
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('HELO client.example')).code, 250);
      c.write('MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n');
      assert.match((await c.read()).line, edgeRefusal('554 5.5.1 Protocol error'));
      assert.equal(await c.closedByServer(), true);

      const ok = await h.connect();
      assert.equal((await ok.read()).code, 220);
      assert.equal((await ok.cmd('EHLO client.example')).code, 250);
      ok.write('MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n');
      assert.equal((await ok.read()).code, 250);
      assert.equal((await ok.read()).code, 250);
      assert.equal((await ok.read()).code, 354);
      ok.write('Subject: pipelined\r\n\r\nbody\r\n.\r\n');
      assert.equal((await ok.read()).code, 250);
      ok.quit();
      assert.equal(h.backend.messages.length, 1);
    } finally {
      await h.close();
    }
  });

  it('swaks --pipeline (RFC 2920 as written) is delivered', async () => {
    const h = await startHarness(pipelining);
    try {
      const r = await run('swaks', ['--server', '127.0.0.1', '--port', String(h.port()), '--pipeline', '--helo', 'client.example', '--from', 'alice@example.org', '--to', 'bob@example.com', '--timeout', '30'], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /250-PIPELINING/);
      assert.match(r.stdout, / -> MAIL FROM:<alice@example\.org>\n -> RCPT TO:<bob@example\.com>\n -> DATA\n/, 'swaks sent the three commands ahead of their replies');
      assert.equal(h.backend.messages.length, 1);
      assert.equal(await protocolMetric(h, 'pipelining', 'fail'), 0);
    } finally {
      await h.close();
    }
  });

  it('off by default: commands pipelined after HELO are answered one by one', async () => {
    const h = await startHarness();
    try {
      const c = await h.connect();
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('HELO client.example')).code, 250);
      c.write('MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n');
      assert.equal((await c.read()).code, 250);
      assert.equal((await c.read()).code, 250);
      c.quit();
    } finally {
      await h.close();
    }
  });
});

describe('HELO checks', () => {
  async function rcptAfterHelo(h: Harness, helo: string): Promise<string> {
    const c = await h.connect();
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd(`EHLO ${helo}`)).code, 250, 'the HELO checks refuse at RCPT TO, not at EHLO');
    assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
    const r = await c.cmd('RCPT TO:<bob@example.com>');
    c.quit();
    return r.line;
  }

  it('syntax: a name that is not fully qualified, or a bare address, is refused 550 5.5.2 at RCPT TO; a host name or an address literal passes', async () => {
    const h = await startHarness(withListener({ heloChecks: { syntax: true } }));
    try {
      assert.match(await rcptAfterHelo(h, 'localhost'), edgeRefusal('550 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname or address literal'));
      assert.match(await rcptAfterHelo(h, '192.0.2.7'), /^550 5\.5\.2 /);
      assert.match(await rcptAfterHelo(h, 'mail_server.example'), /^550 5\.5\.2 /);
      assert.match(await rcptAfterHelo(h, 'mail.client.example'), /^250 /);
      assert.match(await rcptAfterHelo(h, '[192.0.2.7]'), /^250 /);
      assert.equal(await protocolMetric(h, 'helo', 'fail'), 3);
    } finally {
      await h.close();
    }
  });

  it('notOurs: our host name or the address the client connected to is refused 550 5.7.1; another name passes', async () => {
    const h = await startHarness(withListener({ heloChecks: { notOurs: true } }));
    try {
      assert.match(await rcptAfterHelo(h, 'EDGE.test'), edgeRefusal('550 5.7.1 <edge.test>: Helo command rejected: you are not me'));
      assert.match(await rcptAfterHelo(h, '[127.0.0.1]'), /^550 5\.7\.1 /);
      assert.match(await rcptAfterHelo(h, 'mail.client.example'), /^250 /);
    } finally {
      await h.close();
    }
  });

  it('notOurs on a listener bound to every address: the address the client connected to is refused 550 5.7.1', async () => {
    const h = await startHarness((r) => {
      r.listeners = [{ name: 'main', listen: '0.0.0.0:0', heloChecks: { notOurs: true } }];
    });
    try {
      assert.match(await rcptAfterHelo(h, '[127.0.0.1]'), /^550 5\.7\.1 /);
      assert.match(await rcptAfterHelo(h, '[127.0.0.2]'), /^250 /);
    } finally {
      await h.close();
    }
  });

  it('fcrdns: confirmed passes, no PTR or a PTR whose name does not lead back is 550 5.7.1, a DNS failure is 451 4.7.1', async () => {
    const confirmed: Record<string, TestRecords> = { '1.0.0.127.in-addr.arpa': { PTR: ['host.client.test'] }, 'host.client.test': { A: ['127.0.0.1'] } };
    const dns = await startDnsServer({ records: confirmed });
    const h = await startHarness((r) => {
      withListener({ heloChecks: { fcrdns: true } })(r);
      r.dns = { servers: [dns.address], timeoutMs: 500, healthCheckIntervalSec: 0 };
    });
    try {
      assert.match(await rcptAfterHelo(h, 'host.client.test'), /^250 /);
      dns.setRecords({ '1.0.0.127.in-addr.arpa': { PTR: ['elsewhere.client.test'] }, 'elsewhere.client.test': { A: ['192.0.2.1'] } });
      assert.match(await rcptAfterHelo(h, 'host.client.test'), edgeRefusal('550 5.7.1 Client host rejected: cannot find your hostname, [127.0.0.1]'));
      dns.setRecords({});
      assert.match(await rcptAfterHelo(h, 'host.client.test'), /^550 5\.7\.1 /);
      dns.setMode('servfail');
      assert.match(await rcptAfterHelo(h, 'host.client.test'), edgeRefusal('451 4.7.1 Client host rejected: cannot find your hostname, [127.0.0.1] (temporary DNS failure)'));
      dns.setMode('blackhole');
      assert.match(await rcptAfterHelo(h, 'host.client.test'), /^451 4\.7\.1 /);
      assert.equal(await protocolMetric(h, 'helo', 'pass'), 1);
      assert.equal(await protocolMetric(h, 'helo', 'tempfail'), 2);
    } finally {
      await h.close();
      await dns.close();
    }
  });

  it('a client on the global accept list skips the HELO checks', async () => {
    const h = await startHarness((r) => {
      withListener({ heloChecks: { syntax: true } })(r);
      r.connectionFilter = { accept: ['127.0.0.1'] };
    });
    try {
      assert.match(await rcptAfterHelo(h, 'localhost'), /^250 /);
    } finally {
      await h.close();
    }
  });
});
