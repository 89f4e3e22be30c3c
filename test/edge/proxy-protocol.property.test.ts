/**
 * Property tests of the PROXY v1/v2 parser, which every byte a balancer-facing listener receives
 * meets first: any input is parsed or refused with the parser's own error (never another exception,
 * never a wait without bound), and valid headers for random addresses and ports round-trip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { parseProxyHeader, ProxyProtocolError, readProxyHeader, V2_MAX_PAYLOAD } from '../../src/edge/proxy-protocol.js';
import { normalizeIp } from '../../src/net/ip.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_MAX = 107;
const V2_MAX = 16 + V2_MAX_PAYLOAD;

/** parseProxyHeader's outcome for `buf`, with any exception that is not the parser's own rethrown. */
function outcome(buf: Buffer): 'incomplete' | 'refused' | { length: number; sourceAddress: string } {
  try {
    const r = parseProxyHeader(buf);
    return r === 'incomplete' ? r : { length: r.length, sourceAddress: r.info.sourceAddress };
  } catch (err) {
    if (err instanceof ProxyProtocolError) {
      assert.equal(err.reply.code, 421);
      return 'refused';
    }
    throw err;
  }
}

const port = fc.integer({ min: 0, max: 65535 });
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** Text that looks like a v1 field: addresses of every kind, near-misses, and junk. */
const v1Token = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4Extended(),
  fc.tuple(fc.ipV6(), fc.string({ maxLength: 6 })).map(([a, z]) => `${a}%${z}`),
  fc.nat(70000).map(String),
  fc.constantFrom('', '0', '00', '-1', '65535', '65536', 'TCP4', 'TCP6', 'UNKNOWN', '::', '::ffff:1.2.3.4'),
  fc.string({ maxLength: 20 }),
);
const v1Like = fc
  .tuple(fc.constantFrom('TCP4', 'TCP6', 'UNKNOWN', 'UDP4', 'tcp4'), fc.array(v1Token, { maxLength: 6 }), fc.constantFrom('\r\n', '\n', '', '\r\nEHLO x\r\n'))
  .map(([proto, fields, end]) => Buffer.from(`PROXY ${[proto, ...fields].join(' ')}${end}`, 'latin1'));
/** A v2 header with a random version/command, family/transport, declared length and payload. */
const v2Like = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffff }), bytes(300))
  .map(([vc, fp, len, payload]) => {
    const head = Buffer.alloc(4);
    head[0] = vc;
    head[1] = fp;
    head.writeUInt16BE(len, 2);
    return Buffer.concat([SIG, head, payload]);
  });
/** Well-formed v1 lines whose addresses may carry an IPv6 zone, which node:net alone would take. */
const v1Zoned = fc
  .tuple(fc.ipV6(), fc.stringMatching(/^[a-z0-9]{0,6}$/), fc.ipV6(), port, port)
  .map(([src, zone, dst, sp, dp]) => Buffer.from(`PROXY TCP6 ${src}%${zone} ${dst} ${sp} ${dp}\r\n`, 'latin1'));
const anyInput = fc.oneof(bytes(200), v1Like, v1Zoned, v2Like, bytes(120).map((b) => Buffer.concat([Buffer.from('PROXY '), b])), bytes(60).map((b) => Buffer.concat([SIG, b])));

test('any bytes are parsed, refused with ProxyProtocolError, or incomplete; incomplete only below the maximum header size', () => {
  fc.assert(
    fc.property(anyInput, (buf) => {
      const r = outcome(buf);
      if (r === 'incomplete') {
        // What the reader may buffer while waiting is bounded by the largest header there can be.
        assert.ok(buf.length < Math.max(V1_MAX, V2_MAX), `incomplete at ${buf.length} bytes`);
        if (buf[0] === 0x50) assert.ok(buf.length < V1_MAX);
      } else if (r !== 'refused') {
        assert.ok(r.length > 0 && r.length <= buf.length, 'a header never claims bytes it was not given');
        assert.ok(r.length <= V2_MAX);
        // The client address goes to every filter, the logs and the Received: field: a plain address in canonical form.
        if (r.sourceAddress !== '') assert.equal(normalizeIp(r.sourceAddress), r.sourceAddress);
        assert.ok(!r.sourceAddress.includes('%'), `a scoped address is no client address: ${r.sourceAddress}`);
      }
    }),
    { numRuns: 3000 },
  );
});

test('a refused or parsed input stays so with more bytes after it (the verdict never waits on bytes past the header)', () => {
  fc.assert(
    fc.property(anyInput, bytes(40), (buf, more) => {
      const first = outcome(buf);
      if (first === 'incomplete') return;
      const later = outcome(Buffer.concat([buf, more]));
      assert.deepEqual(later, first);
    }),
    { numRuns: 1500 },
  );
});

test('v1 round trip: TCP4/TCP6 headers for random addresses and ports give back the client, and leave the rest', () => {
  const family = fc.oneof(
    fc.tuple(fc.constant('TCP4'), fc.ipV4(), fc.ipV4()),
    fc.tuple(fc.constant('TCP6'), fc.ipV6(), fc.ipV6()),
  );
  fc.assert(
    fc.property(family, port, port, bytes(30), ([proto, src, dst], sport, dport, rest) => {
      const header = Buffer.from(`PROXY ${proto} ${src} ${dst} ${sport} ${dport}\r\n`, 'latin1');
      const parsed = parseProxyHeader(Buffer.concat([header, rest]));
      assert.notEqual(parsed, 'incomplete');
      if (parsed === 'incomplete') return;
      assert.equal(parsed.length, header.length);
      assert.deepEqual(parsed.info, { sourceAddress: normalizeIp(src), sourcePort: sport, destAddress: normalizeIp(dst), destPort: dport, local: false });
    }),
    { numRuns: 500 },
  );
});

test('v2 round trip: PROXY commands for random IPv4/IPv6 addresses, ports and TLV bytes give back the client', () => {
  const address = fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }));
  fc.assert(
    fc.property(address, port, port, bytes(64), bytes(20), (src, sport, dport, tlvs, rest) => {
      const dst = new Uint8Array(src.length).fill(1);
      const ports = Buffer.alloc(4);
      ports.writeUInt16BE(sport, 0);
      ports.writeUInt16BE(dport, 2);
      const payload = Buffer.concat([Buffer.from(src), Buffer.from(dst), ports, tlvs]);
      const head = Buffer.from([0x21, src.length === 4 ? 0x11 : 0x21, 0, 0]);
      head.writeUInt16BE(payload.length, 2);
      const header = Buffer.concat([SIG, head, payload]);
      const parsed = parseProxyHeader(Buffer.concat([header, rest]));
      assert.notEqual(parsed, 'incomplete');
      if (parsed === 'incomplete') return;
      assert.equal(parsed.length, header.length);
      // ipaddr.js spells the bytes independently; an IPv4-mapped IPv6 client is its IPv4 address.
      assert.equal(parsed.info.sourceAddress, normalizeIp(ipaddr.fromByteArray([...src]).toString()));
      assert.equal(parsed.info.sourcePort, sport);
      assert.equal(parsed.info.destPort, dport);
      assert.equal(parsed.info.local, false);
    }),
    { numRuns: 500 },
  );
});

test('over a real socket, random bytes in random segments always settle: a header, or ProxyProtocolError, never a hang', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port: listening } = server.address() as net.AddressInfo;
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(anyInput, { minLength: 1, maxLength: 4 }), async (segments) => {
        const accepted = once(server, 'connection') as Promise<[net.Socket]>;
        const client = net.connect({ host: '127.0.0.1', port: listening, noDelay: true });
        client.on('error', () => undefined);
        const [socket] = await accepted;
        const started = Date.now();
        const settled = readProxyHeader(socket, 1000).then(
          () => 'parsed',
          (err: unknown) => {
            assert.ok(err instanceof ProxyProtocolError, String(err));
            return 'refused';
          },
        );
        for (const s of segments) client.write(s);
        client.end();
        await settled;
        assert.ok(Date.now() - started < 1000, 'settled by the end of the input, not by the time-out');
        client.destroy();
        socket.destroy();
      }),
      { numRuns: 40 },
    );
  } finally {
    server.close();
  }
});
