/**
 * Sockets that hold their writes to the end of the turn (turn-writes.ts), over real sockets on
 * loopback: what a peer receives is what was written, in order; nothing leaves before the turn ends
 * unless released; a socket its own code corks keeps its grouping; release and end send what is held.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { holdWritesPerTurn, release } from '../../src/net/turn-writes.js';

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

/** A connected pair: `ours` (holding its writes) and what its peer receives, until it closes. */
async function pair(): Promise<{ ours: net.Socket; received: Promise<string> }> {
  let accepted!: (s: net.Socket) => void;
  const peer = new Promise<net.Socket>((resolve) => (accepted = resolve));
  const server = net.createServer((s) => accepted(s));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const ours = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => ours.once('connect', resolve));
  holdWritesPerTurn(ours);
  const s = await peer;
  sockets.push(ours, s);
  const received = new Promise<string>((resolve) => {
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (text += d));
    s.on('end', () => {
      s.end();
      resolve(text);
    });
  });
  return { ours, received };
}

const turnEnd = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('writes held to the end of the turn', () => {
  it('leave at the turn end, every socket its own bytes in order', async () => {
    const a = await pair();
    const b = await pair();
    const mail = 'MAIL FROM:<a@example.test>\r\n';
    a.ours.write('250 2.1.0 Ok\r\n');
    b.ours.write(mail);
    a.ours.write(Buffer.from('250 2.1.5 Ok\r\n'));
    assert.equal(a.ours.writableLength, 28, 'held in this turn');
    assert.equal(b.ours.writableLength, mail.length);
    await turnEnd();
    assert.equal(a.ours.writableLength, 0, 'sent at the turn end');
    assert.equal(b.ours.writableLength, 0);
    b.ours.write('RCPT TO:<b@example.test>\r\n');
    a.ours.end();
    b.ours.end();
    assert.equal(await a.received, '250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n');
    assert.equal(await b.received, 'MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n');
  });

  it('keeps the grouping of a socket its own code corked', async () => {
    const a = await pair();
    a.ours.cork();
    a.ours.write('one\r\n');
    a.ours.write('two\r\n');
    await turnEnd();
    assert.equal(a.ours.writableCorked, 1, 'still corked: its own code uncorks it');
    assert.equal(a.ours.writableLength, 10);
    a.ours.uncork();
    assert.equal(a.ours.writableLength, 0);
    a.ours.end();
    assert.equal(await a.received, 'one\r\ntwo\r\n');
  });

  it('sends what is held at once when released, before a destroy', async () => {
    const a = await pair();
    a.ours.write('221 2.0.0 Bye\r\n');
    release(a.ours);
    assert.equal(a.ours.writableLength, 0);
    assert.equal(a.ours.writableCorked, 0);
    a.ours.destroy();
    assert.equal(await a.received, '221 2.0.0 Bye\r\n');
  });

  it('sends what is held when the socket is ended in the same turn', async () => {
    const a = await pair();
    a.ours.write('421 4.3.2 Service shutting down\r\n');
    a.ours.end();
    assert.equal(await a.received, '421 4.3.2 Service shutting down\r\n');
  });

  it('passes a write callback on', async () => {
    const a = await pair();
    const written = new Promise<void>((resolve, reject) => a.ours.write('x', (err) => (err ? reject(err) : resolve())));
    await written;
    a.ours.end();
    assert.equal(await a.received, 'x');
  });
});
