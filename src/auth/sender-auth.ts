/**
 * The SenderAuth port: what the policy asks about a sender (SPF at MAIL FROM) and about a message
 * (DKIM, ARC and DMARC at the end of DATA), and the results it gets back, each with the method
 * entry (RFC 8601 `method=result ...`) the edge stamps into Authentication-Results.
 */
import type { Readable } from 'node:stream';

export type AuthMechanism = 'spf' | 'dkim' | 'dmarc' | 'arc';

/** RFC 8601 2.7.2 (SPF), 2.7.1 (DKIM), RFC 7489 11.2 (DMARC), RFC 8617 (ARC) result words. */
export type AuthResultWord = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror' | 'policy';

export interface SpfCheck {
  result: AuthResultWord;
  /** The domain whose record was evaluated: MAIL FROM's, or the HELO name's for the blank sender. */
  domain: string;
  /** The identity checked: `mailfrom` (MAIL FROM) or `helo` (the blank sender). */
  identity: 'mailfrom' | 'helo';
  /** The Authentication-Results method entry. */
  info: string;
}

export interface DkimCheck {
  result: AuthResultWord;
  /** The signing domain (`d=`), when the signature names one. */
  domain: string | undefined;
  info: string;
}

export interface DmarcCheck {
  result: AuthResultWord;
  /** The header From: domain the policy was looked up for. */
  domain: string;
  /** The policy that applies to this domain (`sp=` for a subdomain), when a record was found. */
  policy: 'none' | 'quarantine' | 'reject' | undefined;
  info: string;
}

export interface MessageAuthInput {
  message: Readable;
  /** MAIL FROM, '' for the blank sender. */
  sender: string;
  ip: string;
  helo: string;
  /** The SPF result of this transaction (DMARC aligns on it), when SPF was evaluated. */
  spf: SpfCheck | undefined;
}

export interface MessageAuth {
  /** One entry per DKIM-Signature; a message without any has one `none` entry. */
  dkim: DkimCheck[];
  arc: { result: AuthResultWord; info: string };
  /** Undefined when the message has no single From: domain to apply DMARC to (RFC 7489 6.6.1). */
  dmarc: DmarcCheck | undefined;
}

export interface SenderAuth {
  /** RFC 7208 check_host() for MAIL FROM (or HELO, when MAIL FROM is blank); never rejects. */
  spf(input: { sender: string; ip: string; helo: string }): Promise<SpfCheck>;
  /** DKIM, ARC and DMARC for a whole message; never rejects for anything the message or DNS holds. */
  message(input: MessageAuthInput): Promise<MessageAuth>;
}
