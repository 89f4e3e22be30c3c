/**
 * Step 15 on a message's header section, read as the message streams in (readHeaderSection, at most
 * HEADER_SECTION_MAX): its From: judged by the policy, unless its first line would continue the
 * edge's Received: field.
 */
import type { Verdict } from '../policy/verdict.js';
import { headerFromAddress, type HeaderSection } from './header-from.js';
import { reply, type SmtpReply } from '../net/smtp-reply.js';

/** The header section is judged on at most this much; longer header sections are judged on their start. */
export const HEADER_SECTION_MAX = 256 * 1024;

/**
 * A message whose first line opens with a space or tab would continue the edge's own Received: field,
 * making the client's text part of the trace the edge vouches for. No header section may open with a
 * continuation line (RFC 5322 2.2.3), so such a message is refused rather than repaired.
 */
export const CONTINUATION_REFUSED: SmtpReply = reply(554, '5.6.0', 'Message header section must not open with white space');

export type HeaderJudgement = { verdict: Verdict } | { refused: SmtpReply };

/**
 * Runs step 15 (`headerFrom`) on a header section read (readHeaderSection, at most HEADER_SECTION_MAX):
 * a plain function on the section in hand, so that reading it is the message's only wait here.
 */
export function judgeHeaderSection(section: HeaderSection, headerFrom: (address: string | undefined) => Verdict): HeaderJudgement {
  if (section.head[0] === 0x20 || section.head[0] === 0x09) return { refused: CONTINUATION_REFUSED };
  return { verdict: headerFrom(headerFromAddress(section.head)) };
}
