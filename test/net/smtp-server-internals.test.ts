/**
 * The smtp-server internals that net/smtp-server-adapter.ts overrides or calls are still there, in the
 * shape it was written against. An upgrade that renames, removes or reshapes one fails here, naming
 * the member, instead of failing somewhere in a session.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { AdaptedSmtpServer, SMTP_SERVER_INTERNALS, SMTP_SERVER_VERSION } from '../../src/net/smtp-server-adapter.js';

const require = createRequire(import.meta.url);

function checkMembers(name: string, proto: object, instance: object, members: Record<string, number | 'field'>): void {
  for (const [member, shape] of Object.entries(members)) {
    if (shape === 'field') {
      assert.ok(member in instance, `smtp-server ${name}.${member} (a field the adapter reads) is gone`);
      continue;
    }
    const fn: unknown = Reflect.get(proto, member);
    assert.equal(typeof fn, 'function', `smtp-server ${name}.prototype.${member} (a method the adapter overrides or calls) is gone`);
    assert.equal((fn as (...args: unknown[]) => unknown).length, shape, `smtp-server ${name}.prototype.${member} now takes ${(fn as () => void).length} parameters, not ${shape}`);
  }
}

describe('smtp-server internals the adapter relies on', () => {
  let server: AdaptedSmtpServer;
  let client: net.Socket;
  let connection: SMTPConnection;

  before(async () => {
    server = new AdaptedSmtpServer({ logger: false, disableReverseLookup: true });
    server.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.server.once('listening', resolve));
    const { port } = server.server.address() as net.AddressInfo;
    client = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => client.once('data', resolve));
    const [first] = server.connections;
    assert.ok(first, 'the server keeps its open connections in `connections`');
    connection = first;
  });

  after(async () => {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('is the pinned release, pinned exactly in package.json', () => {
    const installed = (JSON.parse(fs.readFileSync(require.resolve('smtp-server/package.json'), 'utf8')) as { version: string }).version;
    assert.equal(installed, SMTP_SERVER_VERSION, `smtp-server ${installed} is installed; the adapter was written against ${SMTP_SERVER_VERSION}: check its internals, then the pin`);
    const ours = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(ours.dependencies['smtp-server'], SMTP_SERVER_VERSION, 'package.json must pin smtp-server exactly (no range)');
  });

  it('SMTPServer has what the adapter uses', () => {
    checkMembers('SMTPServer', SMTPServer.prototype, server, SMTP_SERVER_INTERNALS.SMTPServer);
  });

  it('SMTPConnection has what the adapter uses', () => {
    checkMembers('SMTPConnection', SMTPConnection.prototype, connection, SMTP_SERVER_INTERNALS.SMTPConnection);
    assert.ok(connection._parser, 'a ready connection has its parser in `_parser`');
    assert.equal(typeof connection._parser._dataMode, 'boolean', 'smtp-server SMTPStream._dataMode is no longer a boolean');
    assert.equal(typeof connection._handlerPending, 'boolean', 'smtp-server SMTPConnection._handlerPending is no longer a boolean');
  });

  it('SMTPStream has what the adapter uses', () => {
    checkMembers('SMTPStream', SMTPStream.prototype, new SMTPStream(), SMTP_SERVER_INTERNALS.SMTPStream);
  });

  it('uses only the members of its set of open connections that the adapter replaces it with (add, delete, size, forEach)', () => {
    const dir = path.dirname(require.resolve('smtp-server'));
    const uses = new Set<string>();
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.js'))) {
      const source = fs.readFileSync(path.join(dir, file), 'utf8');
      for (const m of source.matchAll(/\bconnections\s*\.\s*(\w+)/g)) uses.add(m[1] ?? '');
      assert.doesNotMatch(source, /(\bof|\.\.\.|Array\.from\()\s*this\.connections\b/, `${file} walks the open connections some other way`);
    }
    assert.deepEqual([...uses].sort(), ['add', 'delete', 'forEach', 'size']);
    assert.equal(server.connections.size, 1, 'the list counts the open connection');
  });
});
