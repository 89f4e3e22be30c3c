/**
 * Steps 15.1-15.3 on the DATA path of a listener with `senderAuth`: the message after its header
 * section is spooled (docs/sender-auth.md: memory up to a bound, then a temporary file), the whole
 * message is checked, and what goes to the back end is the edge's header fields, the header section
 * without forged Authentication-Results of ours, and the spooled rest.
 */
import { Readable } from 'node:stream';
import { stripForgedResults } from '../auth/auth-results-header.js';
import type { SessionPolicy } from '../policy/session-policy.js';
import type { Verdict } from '../policy/verdict.js';
import { MessageSpool } from './message-spool.js';

export interface SpoolSettings {
  memoryBytes: number;
  dir?: string | undefined;
}

export interface AuthenticatedMessage {
  verdict: Verdict;
  /** What to relay when the verdict is `relay`: read it at most once, before `dispose`. */
  message: AsyncIterable<Buffer>;
  /** Forged Authentication-Results fields taken out. */
  removed: number;
  /** Frees the spool (removes its file): call it once the message is relayed or refused. */
  dispose(): Promise<void>;
}

/** Spools `rest` (everything after `head`), runs the checks, and says what to relay. */
export async function authenticateMessage(
  policy: SessionPolicy,
  head: Buffer,
  rest: AsyncIterable<Buffer>,
  spool: SpoolSettings,
  envelope: { sender: string; helo: string },
): Promise<AuthenticatedMessage> {
  const held = new MessageSpool(spool.memoryBytes, spool.dir);
  try {
    for await (const chunk of rest) await held.write(chunk);
    const whole = async function* (): AsyncGenerator<Buffer> {
      yield head;
      yield* held.read();
    };
    const judged = await policy.authenticateMessage(Readable.from(whole()), envelope.sender, envelope.helo);
    const stripped = stripForgedResults(head, policy.authservId);
    const message = async function* (): AsyncGenerator<Buffer> {
      yield Buffer.from(judged.headers);
      yield stripped.head;
      yield* held.read();
    };
    return { verdict: judged.verdict, message: message(), removed: stripped.removed, dispose: () => held.dispose() };
  } catch (err) {
    await held.dispose();
    throw err;
  }
}
