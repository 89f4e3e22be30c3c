/**
 * The message stream of an adapted parser (MessageStream, not smtp-server's PassThrough), over real
 * sockets: a reader that stops reading stops the parser taking the client's bytes off the socket, and
 * the message arrives whole once it reads again, answered before the command pipelined after its dot;
 * a client that goes away mid-message fails the stream, one that sent its message in full leaves it
 * to its reader.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { SMTPServerDataStream, SMTPServerOptions } from 'smtp-server';
import type { SMTPConnectionOptions } from 'smtp-server/lib/smtp-connection.js';
import { AdaptedConnection, AdaptedSmtpServer, type Adaptation } from '../../src/net/smtp-server-adapter.js';
import { DataDecoder } from '../../src/edge/data-decoder.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const DECODING: Adaptation = { greetAtOnce: true, decoder: () => new DataDecoder() };

class DecodingConnection extends AdaptedConnection {
  protected override get adaptation(): Adaptation {
    return DECODING;
  }
}

type OnData = (stream: SMTPServerDataStream, callback: (err?: Error | null) => void) => void;

async function start(onData: OnData, servers: AdaptedSmtpServer[]): Promise<number> {
  const options: SMTPServerOptions = {
    logger: false,
    disableReverseLookup: true,
    name: 'mx.test',
    disabledCommands: ['AUTH'],
    onData: (stream, _session, callback) => onData(stream, callback),
  };
  const server = new AdaptedSmtpServer(options, (s, socket, o: SMTPConnectionOptions | null) => new DecodingConnection(s, socket, o));
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.server.once('listening', resolve));
  return (server.server.address() as net.AddressInfo).port;
}

/** A client past EHLO, MAIL and RCPT, and the 354 to its DATA. */
async function inData(port: number): Promise<RawSmtpClient> {
  const client = await RawSmtpClient.connect(port);
  await client.read();
  for (const line of ['EHLO client.example', 'MAIL FROM:<a@b.example>', 'RCPT TO:<c@d.example>', 'DATA']) {
    client.socket.write(`${line}\r\n`);
    await client.read();
  }
  return client;
}

function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('the message stream of an adapted parser', () => {
  const servers: AdaptedSmtpServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  it('holds the client back while nobody reads, then hands over the whole message, answered before the next command', async () => {
    let stream: SMTPServerDataStream | undefined;
    let answer: ((err?: Error | null) => void) | undefined;
    const port = await start((s, cb) => {
      stream = s;
      answer = cb;
    }, servers);
    const client = await inData(port);
    const line = 'abcdefghijklmnopqrstuvwxyz0123456789\r\n';
    const body = Buffer.alloc(200_000 * line.length, line);
    client.socket.write(body);
    client.socket.write('.\r\nNOOP\r\n');
    await tick(300);
    assert.ok(stream);
    // The parser took about one high-water mark of bytes and stopped: the rest waits in the client's socket and the kernel.
    assert.ok(stream.readableLength <= 64 * 1024, `${stream.readableLength} bytes buffered in the stream`);
    assert.ok(client.socket.writableLength > 0, "the client's writes backed up");
    const whole = await readAll(stream);
    assert.equal(whole.length, body.length);
    assert.ok(whole.equals(body));
    assert.equal(stream.byteLength, body.length);
    answer?.();
    assert.match((await client.read()).line, /^250 /);
    assert.match((await client.read()).line, /^250 /, 'NOOP, pipelined after the dot, answered after the message');
    client.socket.destroy();
  });

  it('fails the stream of a client that goes away mid-message, and leaves a whole message to its reader', async () => {
    const streams: SMTPServerDataStream[] = [];
    const port = await start((s) => streams.push(s), servers);
    const cut = await inData(port);
    cut.socket.write('Subject: cut\r\n\r\nhalf a');
    await tick(100);
    const failed = new Promise<Error>((resolve) => streams[0]?.once('error', resolve));
    cut.socket.destroy();
    assert.match((await failed).message, /closed before the message was received in full/);

    const whole = await inData(port);
    whole.socket.write('Subject: whole\r\n\r\nall of it\r\n.\r\n');
    await tick(100);
    whole.socket.destroy();
    await tick(100);
    const second = streams[1];
    assert.ok(second && !second.destroyed, 'a message received in full is not destroyed');
    assert.equal((await readAll(second)).toString(), 'Subject: whole\r\n\r\nall of it\r\n');
  });
});
