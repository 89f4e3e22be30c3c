import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import {
  readProxyHeader,
  parseProxyHeader,
  ProxyProtocolError,
  V2_MAX_PAYLOAD,
  type ProxyInfo,
} from '../../src/edge/proxy-protocol.js';

interface Outcome {
  info?: ProxyInfo;
  error?: unknown;
  /** Everything the next reader got after the header, until the client closed. */
  rest: string;
  peer: { address: string; port: number };
}

/**
 * Starts a loopback server that reads a PROXY header from each connection and then everything after
 * it; sends `segments` from a real client, one write at a time, and reports what the server saw.
 */
async function exchange(segments: Buffer[], timeoutMs = 5000, host = '127.0.0.1'): Promise<Outcome> {
  let resolveOutcome!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((r) => (resolveOutcome = r));
  const server = net.createServer((socket) => {
    const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    readProxyHeader(socket, timeoutMs).then(
      async (info) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        await once(socket, 'end');
        socket.end();
        resolveOutcome({ info, rest: Buffer.concat(chunks).toString('latin1'), peer });
      },
      (error: unknown) => {
        socket.destroy();
        resolveOutcome({ error, rest: '', peer });
      },
    );
  });
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect({ host, port, noDelay: true });
  client.on('error', () => undefined);
  await once(client, 'connect');
  for (const segment of segments) {
    await new Promise<void>((r) => client.write(segment, () => r()));
    // Give the server a turn so each segment tends to arrive as its own read.
    await new Promise((r) => setTimeout(r, 15));
  }
  // With nothing sent, keep the connection open so that only the time-out can end the wait.
  if (segments.length > 0) client.end();
  const result = await outcome;
  client.destroy();
  server.close();
  return result;
}

const v1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v2(command: number, familyProtocol: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = familyProtocol;
  head.writeUInt16BE(payload.length, 2);
  return Buffer.concat([SIG, head, payload]);
}

function ports(src: number, dst: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(src, 0);
  b.writeUInt16BE(dst, 2);
  return b;
}

function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

const ipv4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
const ipv6 = (groups: number[]): Buffer => {
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
};

test('v1 TCP4: reports the client address and leaves the SMTP bytes for the next reader', async () => {
  const out = await exchange([v1('PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO client.example\r\n')]);
  assert.deepEqual(out.info, {
    sourceAddress: '192.0.2.7',
    sourcePort: 56324,
    destAddress: '198.51.100.1',
    destPort: 25,
    local: false,
  });
  assert.equal(out.rest, 'EHLO client.example\r\n');
});

test('v1 TCP6 over an IPv6 loopback connection', async () => {
  const out = await exchange([v1('PROXY TCP6 2001:db8::7 2001:db8::1 40000 587\r\nQUIT\r\n')], 5000, '::1');
  assert.equal(out.info?.sourceAddress, '2001:db8::7');
  assert.equal(out.info?.destAddress, '2001:db8::1');
  assert.equal(out.info?.sourcePort, 40000);
  assert.equal(out.info?.destPort, 587);
  assert.equal(out.info?.local, false);
  assert.equal(out.rest, 'QUIT\r\n');
});

test('v1 TCP6 addresses come out in one canonical spelling; an IPv4-mapped client as IPv4', async () => {
  const out = await exchange([v1('PROXY TCP6 2001:DB8:0:0::7 ::FFFF:192.0.2.9 40000 25\r\n')]);
  assert.equal(out.info?.sourceAddress, '2001:db8::7');
  assert.equal(out.info?.destAddress, '192.0.2.9');
});

test('v1 UNKNOWN: the connection itself stands for the client', async () => {
  const out = await exchange([v1('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\nHELO x\r\n')]);
  assert.equal(out.info?.local, true);
  assert.equal(out.info?.sourceAddress, out.peer.address);
  assert.equal(out.info?.sourcePort, out.peer.port);
  assert.equal(out.rest, 'HELO x\r\n');
});

test('v1 header split across several TCP segments', async () => {
  const header = 'PROXY TCP4 203.0.113.9 192.0.2.1 1025 25\r\n';
  const out = await exchange([v1(header.slice(0, 3)), v1(header.slice(3, 17)), v1(header.slice(17, -1)), v1('\nEHLO a\r\n')]);
  assert.equal(out.info?.sourceAddress, '203.0.113.9');
  assert.equal(out.rest, 'EHLO a\r\n');
});

test('v2 IPv4 PROXY command with trailing bytes', async () => {
  const header = v2(1, 0x11, Buffer.concat([ipv4('192.0.2.44'), ipv4('10.0.0.1'), ports(61000, 25)]));
  const out = await exchange([Buffer.concat([header, v1('EHLO b\r\n')])]);
  assert.deepEqual(out.info, {
    sourceAddress: '192.0.2.44',
    sourcePort: 61000,
    destAddress: '10.0.0.1',
    destPort: 25,
    local: false,
  });
  assert.equal(out.rest, 'EHLO b\r\n');
});

test('v2 IPv6 PROXY command, and an IPv4-mapped client becomes the IPv4 address', async () => {
  const header = v2(1, 0x21, Buffer.concat([ipv6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x7]), ipv6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]), ports(1, 2)]));
  const out = await exchange([header]);
  assert.equal(out.info?.sourceAddress, '2001:db8::7');
  assert.equal(out.info?.destAddress, '2001:db8::1');
  assert.equal(out.rest, '');

  const mapped = v2(1, 0x21, Buffer.concat([ipv6([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0207]), ipv6([0, 0, 0, 0, 0, 0, 0, 1]), ports(3, 4)]));
  const out2 = await exchange([mapped]);
  assert.equal(out2.info?.sourceAddress, '192.0.2.7');
});

test('v2 LOCAL command (balancer health check) reports local', async () => {
  const out = await exchange([Buffer.concat([v2(0, 0x00, Buffer.alloc(0)), v1('QUIT\r\n')])]);
  assert.equal(out.info?.local, true);
  assert.equal(out.info?.command, 'LOCAL');
  assert.equal(out.info?.sourceAddress, out.peer.address);
  assert.equal(out.rest, 'QUIT\r\n');
});

test('v2 TLVs after the addresses are skipped, not passed on', async () => {
  const payload = Buffer.concat([
    ipv4('198.51.100.23'),
    ipv4('192.0.2.1'),
    ports(44444, 25),
    tlv(0x01, v1('smtp')),
    tlv(0x05, Buffer.from('unique-id-123')),
    tlv(0xea, Buffer.alloc(200, 7)),
  ]);
  const out = await exchange([Buffer.concat([v2(1, 0x11, payload), v1('EHLO c\r\n')])]);
  assert.equal(out.info?.sourceAddress, '198.51.100.23');
  assert.equal(out.info?.sourcePort, 44444);
  assert.equal(out.rest, 'EHLO c\r\n');
});

test('v2 header split across segments, including inside the signature', async () => {
  const header = v2(1, 0x11, Buffer.concat([ipv4('192.0.2.5'), ipv4('192.0.2.6'), ports(5, 6), tlv(0x04, Buffer.alloc(30))]));
  const whole = Buffer.concat([header, v1('DATA-AFTER')]);
  const out = await exchange([whole.subarray(0, 5), whole.subarray(5, 14), whole.subarray(14, 30), whole.subarray(30)]);
  assert.equal(out.info?.sourceAddress, '192.0.2.5');
  assert.equal(out.rest, 'DATA-AFTER');
});

test('every proper prefix of a valid header is incomplete, never an error', () => {
  const headers = [
    v1('PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n'),
    v2(1, 0x21, Buffer.concat([ipv6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x7]), ipv6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]), ports(1, 2), tlv(1, v1('x'))])),
  ];
  for (const h of headers) {
    for (let i = 0; i < h.length; i++) assert.equal(parseProxyHeader(h.subarray(0, i)), 'incomplete');
    const full = parseProxyHeader(h);
    assert.notEqual(full, 'incomplete');
    assert.equal(full !== 'incomplete' && full.length, h.length);
  }
});

const malformed: Array<[string, Buffer]> = [
  ['plain SMTP instead of a header', v1('EHLO client.example\r\n')],
  ['wrong v1 keyword', v1('PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['unknown v1 protocol', v1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1 TCP4 with an IPv6 address', v1('PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n')],
  ['v1 bad address', v1('PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n')],
  ['v1 port out of range', v1('PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n')],
  ['v1 port with leading zero', v1('PROXY TCP4 1.2.3.4 5.6.7.8 025 25\r\n')],
  ['v1 missing field', v1('PROXY TCP4 1.2.3.4 5.6.7.8 25\r\n')],
  ['v1 double space', v1('PROXY TCP4  1.2.3.4 5.6.7.8 1 25\r\n')],
  ['v1 bare LF', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 25\n')],
  ['v1 longer than 107 bytes', v1(`PROXY TCP6 ${'a'.repeat(120)}\r\n`)],
  ['v2 wrong version', Buffer.concat([SIG, Buffer.from([0x11, 0x11, 0, 12]), Buffer.alloc(12)])],
  ['v2 unknown command', Buffer.concat([SIG, Buffer.from([0x22, 0x11, 0, 12]), Buffer.alloc(12)])],
  ['v2 UDP', v2(1, 0x12, Buffer.alloc(12))],
  ['v2 address block too short for IPv4', v2(1, 0x11, Buffer.alloc(8))],
  ['v2 address block too short for IPv6', v2(1, 0x21, Buffer.alloc(20))],
  ['v2 unknown family', v2(1, 0x41, Buffer.alloc(12))],
  ['v2 payload over the limit', v2(1, 0x11, Buffer.alloc(V2_MAX_PAYLOAD + 1))],
  ['corrupt v2 signature', Buffer.concat([SIG.subarray(0, 6), v1('XXXXXXXXXXXXXXXX')])],
];

for (const [name, bytes] of malformed) {
  test(`malformed header is refused: ${name}`, async () => {
    const out = await exchange([bytes]);
    assert.ok(out.error instanceof ProxyProtocolError, `expected ProxyProtocolError, got ${String(out.error)}`);
    assert.equal(out.error.reply.code, 421);
    assert.equal(`${out.error.reply.code} ${out.error.reply.enhanced}`, '421 4.7.0');
    assert.equal(out.info, undefined);
  });
}

test('a client that sends nothing is refused after the time-out with 421 4.4.2', async () => {
  const started = Date.now();
  const out = await exchange([], 150);
  assert.ok(out.error instanceof ProxyProtocolError);
  assert.equal(`${out.error.reply.code} ${out.error.reply.enhanced}`, '421 4.4.2');
  assert.ok(Date.now() - started >= 140);
});

test('a header cut short by the client closing is refused', async () => {
  const out = await exchange([v1('PROXY TCP4 192.0.2.7 198.')]);
  assert.ok(out.error instanceof ProxyProtocolError);
  assert.match(out.error.message, /closed/);
});
