/**
 * Step 15 on a message as it streams in: its header section is read (at most HEADER_SECTION_MAX) and
 * its From: judged by the policy, unless its first line would continue the edge's Received: field.
 */
import type { Verdict } from '../policy/verdict.js';
import { headerFromAddress, readHeaderSection, type HeaderSection } from './header-from.js';
import { reply, type SmtpReply } from '../net/smtp-reply.js';

/** The header section is judged on at most this much; longer header sections are judged on their start. */
const HEADER_SECTION_MAX = 256 * 1024;

/**
 * A message whose first line opens with a space or tab would continue the edge's own Received: field,
 * making the client's text part of the trace the edge vouches for. No header section may open with a
 * continuation line (RFC 5322 2.2.3), so such a message is refused rather than repaired.
 */
export const CONTINUATION_REFUSED: SmtpReply = reply(554, '5.6.0', 'Message header section must not open with white space');

export type HeaderJudgement = { section: HeaderSection; verdict: Verdict } | { section: HeaderSection; refused: SmtpReply };

/** Reads the header section from `source` (every chunk through `count`) and runs step 15 (`headerFrom`) on it. */
export async function judgeHeaderSection(
  source: AsyncIterator<Buffer>,
  count: (chunk: Buffer) => void,
  headerFrom: (address: string | undefined) => Verdict,
): Promise<HeaderJudgement> {
  const section = await readHeaderSection(source, HEADER_SECTION_MAX, count);
  if (section.head[0] === 0x20 || section.head[0] === 0x09) return { section, refused: CONTINUATION_REFUSED };
  return { section, verdict: headerFrom(headerFromAddress(section.head)) };
}
