/** The data that passes between the queue (T1) and delivery (T2) halves of the transport engine. */

/** Per-recipient DSN parameters from RCPT TO (RFC 3461). */
export interface DsnParams {
  notify?: ('SUCCESS' | 'FAILURE' | 'DELAY' | 'NEVER')[];
  /** ORCPT with its xtext decoded (smtp-server already does), e.g. `rfc822;user@example.com`. */
  orcpt?: string;
}

/** One recipient of a queued message. */
export interface EnvelopeRecipient extends DsnParams {
  address: string;
}

/** The envelope of a queued message; the content lives in a separate file. */
export interface Envelope {
  /** Queue id, unique and filesystem-safe. */
  id: string;
  /** '' for the blank sender <>. */
  mailFrom: string;
  recipients: EnvelopeRecipient[];
  ret?: 'FULL' | 'HDRS';
  /** ENVID with its xtext decoded. */
  envid?: string;
  /** Bytes of the content file (for received mail: what the client sent plus the engine's own `Received:` field). */
  size: number;
  /** Received mail only: the bytes the client sent, without our `Received:` field; what the message-size limit applies to. */
  sentSize?: number;
  /** Milliseconds since the epoch. */
  receivedAt: number;
  /** From XFORWARD/XCLIENT when the edge sent them. */
  client?: { ip: string; helo?: string };
  /** A report the engine generated: such a message is never bounced. */
  isDsn?: boolean;
}

/** What happened to one recipient on one delivery attempt. */
export interface RecipientResult {
  address: string;
  outcome: 'delivered' | 'deferred' | 'failed';
  /** The SMTP reply code, e.g. 550 or 451. */
  code?: number;
  /** The enhanced status code, e.g. 5.1.1 or 4.4.1. */
  enhanced: string;
  text: string;
  remoteMta?: string;
  /** Remote delivery: whether the host that took the message offered DSN, so NOTIFY went on with it. */
  nextHopDsn?: boolean;
}
