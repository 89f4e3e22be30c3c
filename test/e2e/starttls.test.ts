/** A listener with a certificate offers STARTTLS; swaks upgrades, and the message is relayed. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startHarness, type Harness } from '../support/edge-harness.js';

const run = promisify(execFile);

describe('STARTTLS on a listener', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=edge.test', '-keyout', key, '-out', cert]);
    h = await startHarness((r) => {
      r.listeners = [
        { name: 'main', listen: '127.0.0.1:0', tls: { key, cert } },
        { name: 'plain', listen: '127.0.0.1:0' },
      ];
    });
  });
  after(async () => {
    await h.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is offered only where a certificate is configured, and a TLS session relays as usual', async () => {
    const base = ['--server', '127.0.0.1', '--from', 'alice@example.org', '--to', 'bob@example.com', '--body', 'over TLS'];
    const tls = await run('swaks', [...base, '--port', String(h.port('main')), '--tls'], { timeout: 20000 });
    assert.match(tls.stdout, /<- {1,2}250[ -]STARTTLS/);
    assert.match(tls.stdout, /<- {1,2}220 /);
    assert.match(tls.stdout, /TLS started with cipher/);
    assert.match(tls.stdout, /<~ {1,2}250 2\.6\.0 /, 'the end of DATA is answered inside TLS with the back end reply');
    assert.match(h.backend.messages.at(-1)?.data.toString() ?? '', /over TLS/);
    const plain = await run('swaks', [...base, '--port', String(h.port('plain')), '--quit-after', 'EHLO'], { timeout: 20000 });
    assert.doesNotMatch(plain.stdout, /STARTTLS/);
  });
});
