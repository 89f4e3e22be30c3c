/**
 * Step 1, the pre-greeting test (postscreen's): the greeting opens with a teaser line, then a pause;
 * a client that sends anything before the greeting's last line is a bot that does not wait for the
 * server. A client that passed is remembered by address in the StateStore for `cacheTtlSec` and
 * greeted at once next time; one that later pipelines without leave is forgotten.
 */
import type { SMTPServerSession } from 'smtp-server';
import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { PreGreetingResult } from '../policy/protocol-tests.js';
import type { StateStore } from '../state/state-store.js';
import { pauseGreeting } from '../net/smtp-server-adapter.js';

export type ProtocolTestSettings = ListenerConfig['protocolTests'];

/** The StateStore key of a client that passed. */
export function passedKey(clientIp: string): string {
  return `protocol-tests:passed:${clientIp}`;
}

/**
 * Runs the test on a session whose greeting has not been written. The store being unreachable
 * only costs the client the pause: logged, never a refusal.
 */
export async function preGreetingTest(
  session: SMTPServerSession,
  clientIp: string,
  settings: ProtocolTestSettings,
  teaser: string,
  state: StateStore,
  logger: Logger,
): Promise<PreGreetingResult> {
  const key = passedKey(clientIp);
  const passedBefore = await state.get(key).catch((err: unknown) => {
    logger.warn({ session: session.id, err: (err as Error).message }, 'protocol-test cache unreadable; the client gets the pause');
    return undefined;
  });
  if (passedBefore !== undefined) return 'cached';
  if (!(await pauseGreeting(session, teaser, settings.greetPauseMs))) return 'fail';
  await state.set(key, '1', settings.cacheTtlSec * 1000).catch((err: unknown) => {
    logger.warn({ session: session.id, err: (err as Error).message }, 'protocol-test cache not written; the client gets the pause next time');
  });
  return 'pass';
}
