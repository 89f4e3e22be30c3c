/**
 * HAProxy in front of `portcullis serve`, as an operator runs it: `option smtpchk` health checks over
 * PROXY v2 (`LOCAL`) and v1 (a header describing the check connection itself), every 100 ms, on
 * listeners that deny every address. The checks must keep both servers UP and stay out of the
 * decision log, the protocol log and the session metrics; a client relayed by HAProxy is still a
 * session, under the listener's policy. And clients on their own loopback addresses (127.0.0.2,
 * 127.0.0.3) through HAProxy's `send-proxy-v2` and `send-proxy`: the rules, the edge's `Received:`
 * field and the XFORWARD the back end records all see the client, never HAProxy's 127.0.0.1
 * (smtp-sink accepts XFORWARD but records only its own peer, so the back end here is smtp-server;
 * test/interop/postfix.test.ts checks XFORWARD against Postfix).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { sample } from '../support/metrics-text.js';
import { RawSmtpClient, edgeRefusal } from '../support/smtp-client.js';
import { startHaproxy, waitForStats } from './haproxy.js';
import { startBackend } from '../support/backend-server.js';
import { freePort, launch, pause, swaksSession, tempDir, waitForPorts, writeRules } from './peers.js';

test('HAProxy health checks (send-proxy-v2 and send-proxy) are answered on deny listeners, counted apart, logged nowhere', async () => {
  const dir = await tempDir('portcullis-haproxy-edge-');
  const ports = { v2: await freePort(), v1: await freePort(), metrics: await freePort() };
  const protocolLog = path.join(dir, 'smtp.log');
  const config = await writeRules(dir, {
    hostname: 'edge.interop.test',
    acceptedDomains: ['example.test'],
    listeners: [
      { name: 'lb-v2', listen: `127.0.0.1:${ports.v2}`, proxyProtocol: { from: ['127.0.0.1'] }, ipRestrictions: { default: 'deny' } },
      { name: 'lb-v1', listen: `127.0.0.1:${ports.v1}`, proxyProtocol: { from: ['127.0.0.1'] }, ipRestrictions: { default: 'deny' } },
    ],
    // Every client is refused at the greeting, so no back end is ever reached.
    backend: { url: 'smtp://127.0.0.1:9' },
    dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
    badmail: path.join(dir, 'badmail'),
    log: { level: 'info', protocolLog },
    metrics: { listen: `127.0.0.1:${ports.metrics}` },
  });
  const edge = launch(process.execPath, ['--import', 'tsx', path.join(process.cwd(), 'src/cli/main.ts'), 'serve', '--config', config]);
  try {
    await waitForPorts(edge, 'tcp', 3, 30_000);
    const haproxy = await startHaproxy([
      { name: 'lb-v2', port: ports.v2, proxy: 'v2' },
      { name: 'lb-v1', port: ports.v1, proxy: 'v1' },
    ]);
    try {
      const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
      const checked = async (): Promise<boolean> => {
        const text = await metrics();
        return ['lb-v2', 'lb-v1'].every((listener) => sample(text, 'portcullis_health_checks_total', { listener }) >= 5);
      };
      // Until five checks were counted on each listener, or one failed.
      const stats = await waitForStats(haproxy, async (s) => Object.values(s).some((x) => x.checkFailures > 0) || (await checked()));
      for (const name of ['lb-v2', 'lb-v1']) {
        assert.equal(stats[name]?.checkFailures, 0, `no check of ${name} ever failed: ${JSON.stringify(stats)}\n${haproxy.output()}`);
        assert.equal(stats[name]?.status, 'UP', `${name} in HAProxy's pool`);
        assert.equal(stats[name]?.checkStatus, 'L7OK', name);
      }
      assert.ok(await checked(), `five checks counted on each listener:\n${await metrics()}`);

      // A real client through each frontend: a session, refused by the listener's deny-all policy.
      for (const name of ['lb-v2', 'lb-v1']) {
        const c = await RawSmtpClient.connect(haproxy.frontends[name] as number);
        assert.match((await c.read()).line, edgeRefusal('554 5.7.1 Access denied'), name);
        assert.equal(await c.closedByServer(), true);
      }

      const text = await metrics();
      for (const listener of ['lb-v2', 'lb-v1']) {
        assert.equal(sample(text, 'portcullis_sessions_total', { listener }), 1, `only the relayed client is a session on ${listener}`);
      }
      assert.equal(sample(text, 'portcullis_verdicts_total'), 2, 'the policy ran for the two clients only');
      assert.equal(sample(text, 'portcullis_replies_total'), 2, 'the two 554s are the only client replies');
      const decisions = edge
        .output()
        .split('\n')
        .filter((l) => l.includes('"event":"decision"'))
        .map((l) => JSON.parse(l) as { client: string; listener: string; step: number; reply: string });
      assert.deepEqual(
        decisions.map((d) => `${d.listener} ${d.step} ${d.reply}`).sort(),
        ['lb-v1 2 554 5.7.1 Access denied', 'lb-v2 2 554 5.7.1 Access denied'],
      );
      // The protocol log is written behind the sessions: wait (bounded) for the second session's line.
      const sessionsLogged = async (): Promise<string> => fs.readFile(protocolLog, 'utf8');
      let transcript = await sessionsLogged();
      for (let i = 0; i < 100 && (transcript.match(/\*\*\* connection from/g)?.length ?? 0) < 2; i++) {
        await pause(50);
        transcript = await sessionsLogged();
      }
      assert.equal(transcript.match(/\*\*\* connection from/g)?.length, 2, `two sessions in the protocol log:\n${transcript}`);
      assert.doesNotMatch(transcript, /HELO localhost/, "no health check's dialogue");
    } finally {
      await haproxy.stop();
    }
  } finally {
    await edge.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('through HAProxy (send-proxy-v2 and send-proxy), the rules, Received: and XFORWARD see the real client address', async () => {
  const dir = await tempDir('portcullis-haproxy-client-');
  const backend = await startBackend({ xforward: true });
  const ports = { v2: await freePort(), v1: await freePort() };
  const config = await writeRules(dir, {
    hostname: 'edge.interop.test',
    acceptedDomains: ['example.test'],
    listeners: [
      { name: 'lb-v2', listen: `127.0.0.1:${ports.v2}`, proxyProtocol: { from: ['127.0.0.1'] } },
      { name: 'lb-v1', listen: `127.0.0.1:${ports.v1}`, proxyProtocol: { from: ['127.0.0.1'] } },
    ],
    // The deny list names the second client: only the address HAProxy reports can match it.
    connectionFilter: { deny: ['127.0.0.3'] },
    backend: { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 10_000 },
    dns: { servers: ['127.0.0.1:9'], healthCheckIntervalSec: 0 },
    badmail: path.join(dir, 'badmail'),
    log: { level: 'info' },
  });
  const edge = launch(process.execPath, ['--import', 'tsx', path.join(process.cwd(), 'src/cli/main.ts'), 'serve', '--config', config]);
  try {
    await waitForPorts(edge, 'tcp', 2, 30_000);
    const haproxy = await startHaproxy(
      [
        { name: 'lb-v2', port: ports.v2, proxy: 'v2' },
        { name: 'lb-v1', port: ports.v1, proxy: 'v1' },
      ],
      1000,
    );
    try {
      await waitForStats(haproxy, (st) => ['lb-v2', 'lb-v1'].every((n) => st[n]?.status === 'UP'));
      for (const name of ['lb-v2', 'lb-v1']) {
        const input = { port: haproxy.frontends[name] as number, helo: 'client.interop.test', headerFrom: 'a@sender.test', to: ['user@example.test'] };
        const good = await swaksSession({ ...input, localAddress: '127.0.0.2', from: 'good@sender.test', subject: `via ${name}` });
        assert.equal(good.dataEnd?.code, 250, `${name}: ${JSON.stringify(good)}`);
        const denied = await swaksSession({ ...input, localAddress: '127.0.0.3', from: 'bad@sender.test', subject: `denied via ${name}` });
        assert.match(denied.mail?.text ?? '', edgeRefusal('550 5.7.1 127.0.0.3 is on the deny list'), `${name}: the rules saw 127.0.0.3`);

        let msg;
        for (let i = 0; i < 100 && !msg; i++, await pause(20)) msg = backend.messages.find((m) => m.data.includes(`Subject: via ${name}`));
        assert.ok(msg, `${name}: relayed to the back end`);
        assert.equal(msg.xforward.ADDR, '127.0.0.2', `${name}: XFORWARD ADDR ${JSON.stringify(msg.xforward)}`);
        assert.equal(msg.xforward.HELO, 'client.interop.test', `${name}: XFORWARD HELO`);
        assert.match(msg.data.toString('latin1'), /^Received: from client\.interop\.test \(\[127\.0\.0\.2\]\)\r\n\s+by edge\.interop\.test/, `${name}: the edge's Received: on top`);
      }
      assert.equal(backend.messages.length, 2, 'the denied client reached nothing');
      const decisions = edge
        .output()
        .split('\n')
        .filter((l) => l.includes('"event":"decision"'))
        .map((l) => JSON.parse(l) as { client: string; listener: string; step: number; action: string });
      assert.deepEqual(
        decisions.filter((d) => d.step === 6).map((d) => `${d.listener} ${d.client} ${d.action}`).sort(),
        ['lb-v1 127.0.0.3 drop', 'lb-v2 127.0.0.3 drop'],
      );
      assert.ok(decisions.every((d) => d.client !== '127.0.0.1'), 'no decision about HAProxy itself');
    } finally {
      await haproxy.stop();
    }
  } finally {
    await edge.stop();
    await backend.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
