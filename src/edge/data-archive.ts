/** A message whose transaction a step chose to archive goes to Badmail, with the envelope and why. */
import { BadmailWriteError, type BadmailWriter } from '../badmail/badmail-writer.js';
import type { Verdict } from '../policy/verdict.js';
import { reply, SmtpError } from '../net/smtp-reply.js';

/** Who sent the message and where it came in, as the Badmail entry records it. */
export interface ArchivedEnvelope {
  id: string;
  sender: string;
  recipients: readonly string[];
  listener: string;
  clientIp: string;
  helo: string;
}

/** Writes `body` to Badmail as archived by `why` (the step that chose the archive); a failed write is a 452. */
export async function archiveMessage(badmail: BadmailWriter, body: AsyncIterable<Buffer>, envelope: ArchivedEnvelope, why: Verdict): Promise<void> {
  await badmail.write(body, {
    id: envelope.id,
    time: new Date().toISOString(),
    source: 'archive',
    sender: envelope.sender,
    recipients: [...envelope.recipients],
    reason: `step ${why.step} ${why.check}${why.rule !== undefined ? `: ${why.rule}` : ''}`,
    listener: envelope.listener,
    clientIp: envelope.clientIp,
    helo: envelope.helo,
    step: why.step,
    check: why.check,
    ...(why.rule !== undefined ? { rule: why.rule } : {}),
  }).catch((err: unknown) => {
    // Our disk failed, not the client: it keeps the message and retries.
    throw err instanceof BadmailWriteError ? new SmtpError(reply(452, '4.3.1', 'Insufficient system storage'), err.message) : err;
  });
}
