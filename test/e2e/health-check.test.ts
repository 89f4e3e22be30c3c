/**
 * A balancer's health checks on a PROXY listener: answered (even where the listener denies every
 * address), counted apart, and invisible to the policy, the protocol log and the session metrics.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { sample } from '../support/metrics-text.js';
import { RawSmtpClient, edgeRefusal } from '../support/smtp-client.js';

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
/** A v2 header with no address block: command 0 is LOCAL, 1 is PROXY (family UNSPEC). */
const v2Bare = (command: 0 | 1): Buffer => Buffer.concat([V2_SIGNATURE, Buffer.from([0x20 | command, 0x00, 0x00, 0x00])]);
/** A v2 PROXY header for a TCP-over-IPv4 client. */
function v2Client(source: string, sourcePort: number): Buffer {
  const addresses = Buffer.from([...source.split('.').map(Number), 127, 0, 0, 1, sourcePort >> 8, sourcePort & 0xff, 0, 25]);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x00, addresses.length]), addresses]);
}

describe('balancer health checks', () => {
  let h: Harness;
  let protocolLog: string;
  before(async () => {
    protocolLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-hc-')), 'smtp.log');
    h = await startHarness((r) => {
      r.listeners = [{ name: 'lb', listen: '127.0.0.1:0', proxyProtocol: { from: ['127.0.0.1'] }, ipRestrictions: { default: 'deny' } }];
      r.log = { level: 'silent', protocolLog };
    });
  });
  after(async () => {
    await h.close();
    fs.rmSync(path.dirname(protocolLog), { recursive: true, force: true });
  });

  /** The metrics, and the protocol log so far (written asynchronously: a short bounded wait for the disk). */
  async function observed(): Promise<{ metrics: string; log: string }> {
    await new Promise((r) => setTimeout(r, 50));
    return { metrics: await h.metrics.render(), log: fs.readFileSync(protocolLog, 'utf8') };
  }

  /** What HAProxy's `option smtpchk` does after the header, plus the commands a check may use. */
  async function smtpCheck(c: RawSmtpClient): Promise<void> {
    assert.equal((await c.read()).line, '220 edge.test ESMTP');
    assert.equal((await c.cmd('HELO localhost')).line, '250 edge.test');
    assert.equal((await c.cmd('EHLO localhost')).line, '250 edge.test');
    assert.equal((await c.cmd('NOOP')).line, '250 2.0.0 OK');
    assert.match((await c.cmd('MAIL FROM:<a@example.org>')).line, /^502 5\.5\.1 /, 'a check carries no mail');
    assert.equal((await c.cmd('QUIT')).line, '221 2.0.0 Bye');
    assert.equal(await c.closedByServer(), true);
  }

  it('PROXY v2 LOCAL: greeted and answered on a listener that denies every address, counted as a check only', async () => {
    const c = await RawSmtpClient.connect(h.port('lb'));
    c.write(v2Bare(0));
    await smtpCheck(c);
    const { metrics, log } = await observed();
    assert.equal(sample(metrics, 'portcullis_health_checks_total', { listener: 'lb' }), 1);
    assert.equal(sample(metrics, 'portcullis_sessions_total'), 0, 'not a session');
    assert.equal(sample(metrics, 'portcullis_verdicts_total'), 0, 'no filter ran');
    assert.equal(sample(metrics, 'portcullis_replies_total'), 0, 'its replies are not client replies');
    assert.equal(log, '', 'nothing in the protocol log');
  });

  it('a PROXY v1 header describing the connection itself (what HAProxy sends for checks) is a check', async () => {
    const c = await RawSmtpClient.connect(h.port('lb'));
    c.send(`PROXY TCP4 127.0.0.1 127.0.0.1 ${c.socket.localPort} ${h.port('lb')}`);
    await smtpCheck(c);
    const { metrics, log } = await observed();
    assert.equal(sample(metrics, 'portcullis_health_checks_total', { listener: 'lb' }), 2);
    assert.equal(sample(metrics, 'portcullis_sessions_total'), 0);
    assert.equal(log, '');
  });

  it('relayed clients are still sessions under the policy: another port on the balancer, v1 UNKNOWN, v2 PROXY', async () => {
    const headers: [string, Buffer][] = [
      ['a v1 client on the balancer host', Buffer.from('PROXY TCP4 127.0.0.1 127.0.0.1 1 25\r\n')],
      ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN\r\n')],
      ['v2 PROXY with no address', v2Bare(1)],
      ['a v2 client', v2Client('192.0.2.7', 40000)],
    ];
    for (const [what, header] of headers) {
      const c = await RawSmtpClient.connect(h.port('lb'));
      c.write(header);
      assert.match((await c.read()).line, edgeRefusal('554 5.7.1 Access denied'), what);
      assert.equal(await c.closedByServer(), true, what);
    }
    let { metrics, log } = await observed();
    for (let i = 0; i < 40 && !log.includes('192.0.2.7'); i++) ({ metrics, log } = await observed());
    assert.equal(sample(metrics, 'portcullis_health_checks_total', { listener: 'lb' }), 2, 'no new check');
    assert.equal(sample(metrics, 'portcullis_sessions_total', { listener: 'lb' }), headers.length);
    assert.equal(sample(metrics, 'portcullis_verdicts_total', { step: '2' }), headers.length);
    assert.match(log, /connection from 192\.0\.2\.7 on listener lb/);
  });

  it('a check that sends an overlong line is answered 500 5.5.2 and closed', async () => {
    const c = await RawSmtpClient.connect(h.port('lb'));
    c.write(v2Bare(0));
    assert.equal((await c.read()).code, 220);
    c.write(`NOOP ${'x'.repeat(600)}`);
    assert.equal((await c.read()).line, '500 5.5.2 Line too long', 'a health check is answered before any session exists: no session ID');
    assert.equal(await c.closedByServer(), true);
  });
});
