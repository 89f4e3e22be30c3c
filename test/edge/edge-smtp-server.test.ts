/**
 * Each command is answered with the reply the edge decided for it, whatever code smtp-server would
 * have written itself: a raw client talks to the whole edge in front of a scripted back end.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';
import { startScriptedBackend, type ScriptedBackend } from '../support/scripted-backend.js';

describe("the edge's replies are its handlers' answers", () => {
  let backend: ScriptedBackend;
  let h: Harness;
  before(async () => {
    backend = await startScriptedBackend();
    h = await startHarness((input) => {
      input.backend = { url: `smtp://127.0.0.1:${backend.port}`, timeoutMs: 2000 };
    });
  });
  after(async () => {
    await h.close();
    await backend.close();
  });

  it("passes the back end's 251 to RCPT and its own MAIL text through, not smtp-server's 250 Accepted", async () => {
    // smtp-server writes 250 for every successful RCPT; a reply matched by code would have lost the 251.
    backend.script = { mail: '250 2.1.0 Sender fine\r\n', rcpt: '251 2.1.5 User not local; will forward\r\n' };
    const c = await h.connect();
    try {
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.cmd('EHLO client.example')).code, 250);
      assert.equal((await c.cmd('MAIL FROM:<a@example.org>')).line, '250 2.1.0 Sender fine');
      assert.equal((await c.cmd('RCPT TO:<b@example.com>')).line, '251 2.1.5 User not local; will forward');
      assert.equal((await c.cmd('DATA')).code, 354);
      assert.equal((await c.cmd('From: a@example.org\r\nSubject: t\r\n\r\nbody\r\n.')).line, '250 2.0.0 Ok: queued');
      assert.equal(backend.taken.length, 1, 'the recipient answered 251 was relayed');
    } finally {
      c.quit();
    }
  });
});
