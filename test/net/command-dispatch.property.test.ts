/**
 * The adapter takes MAIL, RCPT, DATA, HELO, EHLO and QUIT without smtp-server's general command path:
 * over real sockets, any sequence of commands gets the same replies from an AdaptedSmtpServer as from
 * smtp-server's own SMTPServer with the same options (AUTH off, required or optional; commands disabled
 * by the server or for the session; LMTP).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { AdaptedSmtpServer } from '../../src/net/smtp-server-adapter.js';

const COMMANDS = [
  'EHLO a.example', 'HELO b.example', 'MAIL FROM:<a@b.example>', 'mail from:<x@y.example> SIZE=10', 'MAIL FROM:<>', 'MAIL FROM: <a@b.example>',
  'MAIL FROM:<a@xn--bcher-kva.example>', 'RCPT TO:<c@d.example>', 'rcpt to:<postmaster>', 'RCPT TO:<bad', 'DATA', 'data', 'DATA x', 'RSET', 'NOOP',
  'MAIL', 'RCPT', 'MAILX FROM:<a@b.example>', 'MAIL\tFROM:<a@b.example>', 'ma\u0131l FROM:<a@b.example>', ' MAIL FROM:<a@b.example>', 'XYZ', 'AUTH PLAIN', 'VRFY x',
  // 8-bit lines (sent as UTF-8): their text is decoded as UTF-8, not taken from the Latin-1 string that serves ASCII lines.
  // The commands that open and end a connection, in the shapes smtp-server's handlers refuse too.
  'QUIT', 'quit', 'QUIT now', 'ehlo c.example', 'HELO', 'EHLO a b', 'LHLO l.example', 'helo d\u00e9.example', 'QU\u0131T',
  'HELO  two.example', 'HELO tab.example\t', 'HeLo $&.example', 'HELO %s', `HELO ${'a'.repeat(300)}`, `HELO ${'b'.repeat(301)}`, 'HELO x\u0007y',
  'MAIL FROM:<b\u00fccher@b.example>', 'RCPT TO:<\u00e9@d.example>', 'RCPT TO:<c@d.example> X=\u00e9', 'DATA \u00e9',
];

/** The reply lines a server gives `commands` on one connection (a message after each 354), up to a close. */
async function converse(port: number, commands: string[]): Promise<string[]> {
  const socket = net.connect(port, '127.0.0.1');
  let buffered = '';
  let closed = false;
  const waiters: (() => void)[] = [];
  socket.on('data', (c: Buffer) => {
    buffered += c.toString('utf8');
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('close', () => {
    closed = true;
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('error', () => undefined);
  const reply = async (): Promise<string | undefined> => {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(buffered);
      if (m) {
        buffered = buffered.slice(m[0].length);
        return m[0];
      }
      if (closed) return undefined;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const got: string[] = [];
  try {
    for (let r = await reply(), i = 0; r !== undefined; r = await reply(), i++) {
      got.push(r);
      if (r.startsWith('421') || i >= commands.length) break;
      socket.write(r.startsWith('354') ? 'Subject: x\r\n\r\nbody\r\n.\r\n' : `${commands[i]}\r\n`);
      if (r.startsWith('354')) i--;
    }
  } finally {
    socket.destroy();
  }
  return got;
}

async function listening(server: SMTPServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.server.once('listening', resolve));
  return (server.server.address() as net.AddressInfo).port;
}

/** A refusal naming what was parsed, for an address or parameters with a character beyond printable ASCII; else null (accepted). */
function eightBit(address: { address: string; args: unknown }): Error | null {
  const parsed = `${address.address} ${JSON.stringify(address.args)}`;
  return /[^ -~]/.test(parsed) ? Object.assign(new Error(`parsed ${parsed}`), { responseCode: 550 }) : null;
}

/** An onConnect that sets the session's own disabled commands, as an application may (its entries are not normalised). */
function disableForSession(commands: string[]): NonNullable<SMTPServerOptions['onConnect']> {
  return (session, cb) => {
    (session as { disabledCommands?: string[] }).disabledCommands = commands;
    cb();
  };
}

describe('MAIL, RCPT, DATA, HELO, EHLO and QUIT through the adapter', () => {
  const servers: SMTPServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  const modes: [string, SMTPServerOptions][] = [
    ['AUTH off', { disabledCommands: ['AUTH'] }],
    ['AUTH required', { allowInsecureAuth: true }],
    ['AUTH optional', { authOptional: true, allowInsecureAuth: true }],
    ['RCPT and AUTH disabled', { disabledCommands: ['AUTH', 'RCPT'] }],
    ['DATA and AUTH disabled for the session', { allowInsecureAuth: true, onConnect: disableForSession([' data ', 'auth']) }],
    ['EHLO and AUTH disabled', { disabledCommands: ['AUTH', 'EHLO'] }],
    ['QUIT and AUTH disabled for the session', { onConnect: disableForSession(['QUIT', 'AUTH']) }],
    ['LMTP', { lmtp: true, disabledCommands: ['AUTH'] }],
    ['a HELO reply of its own', { disabledCommands: ['AUTH'], heloResponse: '%s greets %s%s, 100%% %%s $1' }],
  ];
  for (const [name, auth] of modes) {
    it(`answers any command sequence as smtp-server does, ${name} (property)`, async () => {
      const options = (): SMTPServerOptions => ({
        logger: false,
        disableReverseLookup: true,
        name: 'mx.test',
        ...auth,
        // An 8-bit address or parameter is refused with what the server parsed, so a line decoded otherwise shows.
        onMailFrom: (address, _session, cb) => cb(eightBit(address)),
        onRcptTo: (address, _session, cb) => cb(eightBit(address)),
        onData: (stream, _session, cb) => {
          stream.resume();
          stream.on('end', () => cb());
        },
      });
      const theirs = new SMTPServer(options());
      const ours = new AdaptedSmtpServer(options());
      servers.push(theirs, ours);
      const [theirPort, ourPort] = [await listening(theirs), await listening(ours)];
      await fc.assert(
        fc.asyncProperty(fc.array(fc.constantFrom(...COMMANDS), { minLength: 1, maxLength: 8 }), async (commands) => {
          const [a, b] = await Promise.all([converse(ourPort, commands), converse(theirPort, commands)]);
          assert.deepEqual(a, b);
        }),
        { numRuns: 40 },
      );
    });
  }

  // The adapter's own handler_DATA: each way an onData handler can answer, and the size limit's 552.
  type DataAnswer = Parameters<NonNullable<SMTPServerOptions['onData']>>[2];
  const endings: [string, Partial<SMTPServerOptions>, (cb: DataAnswer) => void, boolean][] = [
    ['accepted', {}, (cb) => cb(), true],
    ['accepted with its own text', {}, (cb) => cb(null, 'Queued as 4711'), true],
    ['refused with a code', {}, (cb) => cb(Object.assign(new Error('No thanks'), { responseCode: 554 })), true],
    ['refused without a code', {}, (cb) => cb(new Error('Try later')), true],
    ['answered per recipient', {}, (cb) => cb(null, ['one', new Error('two'), Object.assign(new Error('three'), { responseCode: 552 })]), true],
    ['answered before the message is read', {}, (cb) => cb(), false],
    ['over the size limit', { size: 10, rejectOversized: true }, (cb) => cb(), true],
  ];
  for (const [name, extra, end, reads] of endings) {
    it(`ends DATA as smtp-server does: ${name} (property)`, async () => {
      const options = (): SMTPServerOptions => ({
        logger: false,
        disableReverseLookup: true,
        name: 'mx.test',
        disabledCommands: ['AUTH'],
        ...extra,
        onData: (stream, _session, cb) => {
          if (!reads) return end(cb);
          stream.resume();
          stream.on('end', () => end(cb));
        },
      });
      const theirs = new SMTPServer(options());
      const ours = new AdaptedSmtpServer(options());
      servers.push(theirs, ours);
      const [theirPort, ourPort] = [await listening(theirs), await listening(ours)];
      const dataCommands = ['EHLO a.example', 'MAIL FROM:<a@b.example>', 'RCPT TO:<c@d.example>', 'DATA', 'RSET', 'NOOP'];
      await fc.assert(
        fc.asyncProperty(fc.array(fc.constantFrom(...dataCommands), { minLength: 1, maxLength: 10 }), async (commands) => {
          const [a, b] = await Promise.all([converse(ourPort, commands), converse(theirPort, commands)]);
          assert.deepEqual(a, b);
        }),
        { numRuns: 30 },
      );
      const whole = ['EHLO a.example', 'MAIL FROM:<a@b.example>', 'RCPT TO:<c@d.example>', 'DATA', 'MAIL FROM:<a@b.example>'];
      assert.deepEqual(await converse(ourPort, whole), await converse(theirPort, whole));
    });
  }
});
