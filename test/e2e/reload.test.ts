/**
 * A reload applies to every running listener by its name and socket, or is refused whole: a session
 * on a listener never finds itself without rules (421) because the reload renamed or dropped it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../support/edge-harness.js';

async function rcptCode(h: Harness, listener: string): Promise<string> {
  const c = await h.connect(listener);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<alice@example.org>')).code, 250);
  const r = await c.cmd('RCPT TO:<bob@example.com>');
  c.quit();
  return r.line;
}

describe('reload and the running listeners', () => {
  it('a reload that renames, adds or removes a listener, or changes its socket settings, is refused naming the key; every listener keeps working', async () => {
    const h = await startHarness((r) => {
      r.listeners = [
        { name: 'main', listen: '127.0.0.1:0' },
        { name: 'submission', listen: '127.0.0.1:0', relayFrom: ['127.0.0.1'] },
      ];
      r.recipientFilter = { blocked: ['bob@example.com'] };
    });
    try {
      const original = structuredClone(h.input.listeners) as Record<string, unknown>[];
      const attempts: [Record<string, unknown>[], RegExp][] = [
        [[{ ...original[0], name: 'inbound' }, original[1]!], /^listeners\[0\]\.name: 'inbound' is not a running listener \(running: 'main', 'submission'\)/],
        [[original[0]!], /^listeners: the running listener 'submission' is missing/],
        [[...original, { name: 'extra', listen: '127.0.0.1:0' }], /^listeners\[2\]\.name: 'extra' is not a running listener/],
        [[original[0]!, { ...original[1], listen: '127.0.0.1:2599' }], /^listeners\[1\]\.listen: changed for listener 'submission'/],
        [[{ ...original[0], limits: { maxRecipients: 5 } }, original[1]!], /^listeners\[0\]\.limits: changed for listener 'main'/],
      ];
      for (const [listeners, why] of attempts) {
        h.input.listeners = listeners;
        h.input.recipientFilter = { blocked: [] };
        await assert.rejects(h.edge.reload(), { message: why });
        // The old rule set stays whole: bob is still blocked, and both sockets still answer.
        assert.match(await rcptCode(h, 'main'), /^550 5\.1\.1 /);
        assert.match(await rcptCode(h, 'submission'), /^550 5\.1\.1 /);
      }
      // The same listeners, in another order and with new filter settings: applied to both by name.
      h.input.listeners = [{ ...original[1], relayFrom: [] }, original[0]!];
      const rules = await h.edge.reload();
      assert.deepEqual(rules.recipientFilter.blocked, []);
      assert.match(await rcptCode(h, 'main'), /^250 /);
      assert.match(await rcptCode(h, 'submission'), /^250 /);
    } finally {
      await h.close();
    }
  });
});
