/**
 * XCLIENT and XFORWARD details (session.xClient, session.xForward) through the adapter, over real
 * sockets: a server whose options trust no client for a command answers it as smtp-server does and
 * keeps no details of its own per connection (one empty Map that refuses writes); a server that takes
 * XFORWARD keeps each connection's details apart.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { AdaptedSmtpServer } from '../../src/net/smtp-server-adapter.js';
import { RawSmtpClient } from '../support/smtp-client.js';

async function listening(server: SMTPServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.server.once('listening', resolve));
  return (server.server.address() as net.AddressInfo).port;
}

/** A server on loopback that hands over the session of each MAIL FROM it is given. */
async function start(options: SMTPServerOptions, servers: SMTPServer[], adapted: boolean): Promise<{ port: number; sessions: SMTPServerSession[] }> {
  const sessions: SMTPServerSession[] = [];
  const all: SMTPServerOptions = {
    logger: false,
    disableReverseLookup: true,
    name: 'mx.test',
    disabledCommands: ['AUTH'],
    ...options,
    onMailFrom: (_address, session, cb) => {
      sessions.push(session);
      cb();
    },
  };
  const server = adapted ? new AdaptedSmtpServer(all) : new SMTPServer(all);
  servers.push(server);
  return { port: await listening(server), sessions };
}

/** The replies to `lines` on a new connection, after the greeting. */
async function replies(port: number, lines: string[]): Promise<string[]> {
  const client = await RawSmtpClient.connect(port);
  try {
    await client.read();
    const got: string[] = [];
    for (const line of lines) {
      client.socket.write(`${line}\r\n`);
      got.push((await client.read()).line);
    }
    return got;
  } finally {
    client.socket.destroy();
  }
}

const DIALOGUE = ['EHLO client.example', 'XCLIENT ADDR=192.0.2.1 NAME=a.example', 'XFORWARD ADDR=192.0.2.2 NAME=b.example', 'MAIL FROM:<a@b.example>'];

describe('XCLIENT and XFORWARD details through the adapter', () => {
  const servers: SMTPServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  it('a server that trusts nobody with either answers both as smtp-server does, and its connections share one empty, unwritable Map', async () => {
    const ours = await start({}, servers, true);
    const theirs = await start({}, servers, false);
    assert.deepEqual(await replies(ours.port, DIALOGUE), await replies(theirs.port, DIALOGUE));
    await replies(ours.port, DIALOGUE);
    const [first, second] = ours.sessions;
    assert.ok(first && second);
    for (const s of [first, second]) {
      assert.equal(s.xClient.size, 0);
      assert.equal(s.xForward.size, 0);
    }
    assert.equal(first.xClient, second.xClient, 'no Map of its own per connection');
    assert.equal(first.xClient, first.xForward);
    assert.throws(() => first.xClient.set('ADDR', '192.0.2.3'), TypeError);
    assert.equal(second.xClient.size, 0);
  });

  it('a server that takes XFORWARD keeps each connection its own details, as smtp-server does', async () => {
    const ours = await start({ useXForward: true }, servers, true);
    const theirs = await start({ useXForward: true }, servers, false);
    assert.deepEqual(await replies(ours.port, DIALOGUE), await replies(theirs.port, DIALOGUE));
    await replies(ours.port, ['EHLO client.example', 'MAIL FROM:<a@b.example>']);
    const [forwarded, plain] = ours.sessions;
    assert.ok(forwarded && plain);
    assert.equal(forwarded.xForward.get('ADDR'), '192.0.2.2');
    assert.equal(forwarded.xForward.get('NAME'), 'b.example');
    assert.equal(plain.xForward.size, 0, 'the next connection starts with nothing forwarded');
    assert.notEqual(forwarded.xForward, plain.xForward);
    assert.equal(plain.xClient.size, 0);
  });
});
