/**
 * The guide's steps (../shared/spec/filtering.md) and the name of the check each runs: the one
 * table the policy writes its verdicts and traces with, and the logs, metrics and `portcullis check`
 * show. Numbers are the guide's; relay protection and harvest protection, which the guide does not
 * number, sit on the RCPT TO step (8) and the repeat step (13) they belong to; sender authentication,
 * which the guide predates, takes decimals after the step it follows (7.2, 15.1-15.3).
 */
export interface StepCheck {
  readonly step: number;
  readonly check: string;
}

export const STEPS = {
  /** Not the guide's: the process is overloaded (docs/limits.md); before anything else at connect and MAIL FROM. */
  backPressure: { step: 1.2, check: 'back pressure' },
  /** Postscreen-style tests before the guide's steps (docs/protocol-tests.md). */
  preGreeting: { step: 1, check: 'pre-greeting test' },
  pipelining: { step: 1.1, check: 'unauthorised pipelining' },
  ipRestrictions: { step: 2, check: 'IP restrictions' },
  rateConnections: { step: 2.1, check: 'rate limits (connections)' },
  helo: { step: 3, check: 'HELO' },
  heloChecks: { step: 3, check: 'HELO checks' },
  acceptList: { step: 5, check: 'global accept list' },
  denyList: { step: 6, check: 'global deny list' },
  envelopeSender: { step: 7, check: 'sender filter (envelope sender)' },
  rateMessages: { step: 7.1, check: 'rate limits (messages)' },
  /** Sender authentication (docs/sender-auth.md): SPF once the sender has passed step 7. */
  spf: { step: 7.2, check: 'SPF' },
  /** RCPT TO before any filter: a command out of order, answered by the listener itself. */
  rcptOutOfOrder: { step: 8, check: 'order of commands' },
  relayProtection: { step: 8, check: 'relay protection' },
  dnsbl: { step: 9, check: 'DNSBL rules' },
  /** Step 9 in scoring mode: the lists' weights summed against the thresholds. */
  dnsblScore: { step: 9, check: 'DNSBL score' },
  /** An allow rule of first-match mode (a DNSWL) that matched: the rest of step 9 is skipped. */
  dnsAllowlist: { step: 9, check: 'DNS allowlist' },
  exceptions: { step: 10, check: 'exception recipients' },
  blockedRecipients: { step: 11, check: 'recipient filter (blocked recipients)' },
  directory: { step: 12, check: 'directory' },
  /** The recipient passed every filter. */
  recipientAccepted: { step: 12, check: 'recipient accepted' },
  rateRecipients: { step: 12.1, check: 'rate limits (recipients)' },
  greylisting: { step: 12.2, check: 'greylisting' },
  harvest: { step: 13, check: 'harvest protection' },
  /** DATA with no accepted recipient, answered by the listener itself. */
  dataOutOfOrder: { step: 14, check: 'order of commands' },
  headerFrom: { step: 15, check: 'sender filter (header From:)' },
  /** Sender authentication at the end of DATA, on the whole message. */
  dkim: { step: 15.1, check: 'DKIM' },
  dmarc: { step: 15.2, check: 'DMARC' },
  arc: { step: 15.3, check: 'ARC' },
} as const satisfies Record<string, StepCheck>;
