import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readProxyHeader, type ProxyInfo } from '../../src/edge/proxy-protocol.js';
import { run } from './peers.js';

/**
 * A loopback server that reads the PROXY header swaks sends, greets, and answers QUIT: the parser
 * against an independent implementation of both protocol versions.
 */
async function withHeaderServer(fn: (port: number) => Promise<void>): Promise<{ info: ProxyInfo; afterHeader: string }> {
  let result: { info: ProxyInfo; afterHeader: string } | undefined;
  let failure: unknown;
  const server = net.createServer((socket) => {
    readProxyHeader(socket, 10_000).then(
      (info) => {
        socket.write('220 header.test ESMTP\r\n');
        let afterHeader = '';
        socket.on('data', (c: Buffer) => {
          afterHeader += c.toString('latin1');
          if (/QUIT\r\n$/i.test(afterHeader)) socket.end('221 2.0.0 Bye\r\n');
        });
        socket.on('close', () => (result = { info, afterHeader }));
      },
      (err: unknown) => {
        failure = err;
        socket.destroy();
      },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await fn((server.address() as net.AddressInfo).port);
    for (let i = 0; i < 200 && result === undefined && failure === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  } finally {
    server.close();
  }
  if (failure !== undefined) throw failure;
  assert.ok(result, 'the server never saw the session end');
  return result;
}

const cases: Array<{ version: '1' | '2'; family: string; source: string; dest: string }> = [
  { version: '1', family: 'TCP4', source: '192.0.2.7', dest: '198.51.100.1' },
  { version: '1', family: 'TCP6', source: '2001:db8::7', dest: '2001:db8::1' },
  { version: '2', family: 'AF_INET', source: '203.0.113.45', dest: '198.51.100.1' },
  { version: '2', family: 'AF_INET6', source: '2001:db8:1::45', dest: '2001:db8::1' },
];

for (const c of cases) {
  test(`swaks PROXY v${c.version} ${c.family}: the reported client is read and the SMTP bytes follow intact`, async () => {
    const seen = await withHeaderServer(async (port) => {
      const res = await run('swaks', [
        '--server', '127.0.0.1', '--port', String(port), '--quit-after', 'CONNECT', '--timeout', '10',
        '--proxy-version', c.version, '--proxy-family', c.family,
        '--proxy-source', c.source, '--proxy-source-port', '40123', '--proxy-dest', c.dest, '--proxy-dest-port', '25',
      ], { timeoutMs: 30_000 });
      assert.equal(res.code, 0, res.stdout + res.stderr);
      assert.match(res.stdout, /<- {2}220 header\.test ESMTP/);
    });
    assert.deepEqual(seen.info, { sourceAddress: c.source, sourcePort: 40123, destAddress: c.dest, destPort: 25, local: false });
    assert.equal(seen.afterHeader, 'QUIT\r\n');
  });
}
