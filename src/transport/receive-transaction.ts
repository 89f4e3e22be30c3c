/**
 * One mail transaction as the engine takes it, whichever door it came through: the SMTP listener
 * (receive-server.ts, from smtp-server's callbacks) or a caller in this process (serve's edge, with
 * no SMTP text between them). Each step answers with the reply the engine's SMTP listener writes for
 * it, so both doors give a client the same words.
 */
import { reply, SmtpError, type SmtpReply } from '../net/smtp-reply.js';
import type { Clock } from '../runtime/clock.js';
import { rfc5322Date } from './dsn.js';
import { HeaderTap } from './header-tap.js';
import { newQueueId, type QueuedMessage, QueueStorageError, type QueueStore } from './queue-store.js';
import type { Envelope, EnvelopeRecipient } from './types.js';

/** What every transaction of one engine shares. */
export interface ReceiveSettings {
  hostname: string;
  maxMessageSize: number;
  maxRecipients: number;
  store: QueueStore;
  clock: Clock;
  /**
   * Delivers a received message whose content is held in memory before it is queued, when its whole
   * delivery can be made at once: resolves to what records that delivery (called after the receipt is
   * recorded), or undefined: the message is queued. Never rejects.
   */
  deliverNow(message: QueuedMessage, content: Buffer): Promise<(() => void) | undefined>;
  /** Called once a message is on disk and fsynced (queued, or delivered with `delivered` to record it), just before the 250 is written. */
  onQueued(message: QueuedMessage, reply: string, delivered?: () => void): void;
  /** Called when a client is refused or a message could not be stored. */
  onError(event: { kind: 'refused' | 'storage' | 'connection'; ip: string; detail: string }): void;
}

/** The client the message really came from (XFORWARD/XCLIENT, or the caller in this process, say who). */
export interface ReceiveClient {
  ip: string;
  /** As smtp-server keeps a HELO name: lower case. */
  helo?: string;
}

/** MAIL FROM's parameters that the engine acts on. */
export interface MailParams {
  size?: number;
  ret?: 'FULL' | 'HDRS';
  envid?: string;
}

/** smtp-server's own replies (smtp-connection.js), which the SMTP door's client sees for the same cases. */
const ACCEPTED_SENDER = reply(250, '2.1.0', 'Accepted');
const ACCEPTED_RECIPIENT = reply(250, '2.1.5', 'Accepted');
const TOO_MANY_RECIPIENTS = reply(452, '4.5.3', 'Error: too many recipients');
const NEED_MAIL = reply(503, '5.5.1', 'Error: need MAIL command');
const NESTED_MAIL = reply(503, '5.5.1', 'Error: nested MAIL command');
const NEED_RCPT = reply(503, '5.5.1', 'Error: need RCPT command');

/** The caller dropped the transaction (the edge's client went away, a limit was hit) while its body was being read. */
export class ReceiveAbandoned extends Error {
  constructor() {
    super('transaction abandoned by its client');
    this.name = 'ReceiveAbandoned';
  }
}

/** The engine's own trace field, so that a loop between MTAs shows in the hop count. */
function receivedField(client: ReceiveClient, hostname: string, id: string, now: number): string {
  const clean = (s: string): string => s.replace(/[^\x21-\x7e]/g, '?');
  const ip = client.ip.includes(':') ? `IPv6:${client.ip}` : client.ip;
  return `Received: from ${clean(client.helo ?? 'unknown')} ([${ip}])\r\n\tby ${clean(hostname)} (Portcullis transport) with ESMTP id ${id};\r\n\t${rfc5322Date(new Date(now))}\r\n`;
}

export class ReceiveTransaction {
  private sender: string | undefined;
  private params: MailParams = {};
  /** Kept case-exact: a relay must keep local parts that differ only in case apart (RFC 5321 2.4). */
  private readonly recipients: EnvelopeRecipient[] = [];
  /** Lower-cased, as smtp-server counts recipients against maxRecipients. */
  private readonly counted = new Set<string>();
  private abandoned = false;
  private ended = false;
  /** Why the body stopped, when it was the body (or abandon()) and not the engine. */
  private bodyError: unknown;

  /** `onEnd` is told once, when the body has been read (whatever the reply) or the transaction was abandoned. */
  constructor(
    private readonly settings: ReceiveSettings,
    private readonly client: ReceiveClient,
    private readonly onEnd: () => void = () => undefined,
  ) {}

  /** MAIL FROM (`''`: the null sender). */
  mail(sender: string, params: MailParams = {}): SmtpReply {
    if (this.sender !== undefined) return NESTED_MAIL;
    const max = this.settings.maxMessageSize;
    if ((params.size ?? 0) > max) return reply(552, '5.3.4', `Error: message exceeds fixed maximum message size ${max}`);
    this.sender = sender;
    this.params = params;
    return ACCEPTED_SENDER;
  }

  /** RCPT TO; the same address again (exactly) replaces the earlier one, as smtp-server does. */
  rcpt(recipient: EnvelopeRecipient): SmtpReply {
    if (this.sender === undefined) return NEED_MAIL;
    const key = recipient.address.toLowerCase();
    if (this.counted.size >= this.settings.maxRecipients && !this.counted.has(key)) return TOO_MANY_RECIPIENTS;
    this.counted.add(key);
    const i = this.recipients.findIndex((r) => r.address === recipient.address);
    if (i >= 0) this.recipients[i] = recipient;
    else this.recipients.push(recipient);
    return ACCEPTED_RECIPIENT;
  }

  /** Whether DATA may start: a sender and at least one recipient. */
  get ready(): SmtpReply | undefined {
    if (this.sender === undefined) return NEED_MAIL;
    return this.recipients.length === 0 ? NEED_RCPT : undefined;
  }

  /** Nothing more is read for this transaction: a body being read fails (ReceiveAbandoned) and nothing is stored. */
  abandon(): void {
    this.abandoned = true;
    this.end();
  }

  /**
   * Writes the engine's Received: field and `body` (un-stuffed, read as the store takes it, so never
   * buffered whole) into a slot, and answers `250 2.6.0 <id@host> Queued mail for delivery` only once
   * the slot is committed and synced, or the message, delivered whole at once (`deliverNow`), is
   * durable in its mailbox. Over the size limit: 552 5.3.4 and nothing kept; a write that
   * fails: 452 4.3.1; anything else: 451 4.3.0. When `body` itself fails (or abandon() is called while
   * it is read), the slot is given back and that error (ReceiveAbandoned) is rethrown: nobody is left
   * to answer.
   */
  async data(body: AsyncIterable<Buffer>): Promise<SmtpReply> {
    const unready = this.ready;
    if (unready) return unready;
    try {
      return await this.receive(body);
    } catch (err) {
      if (this.bodyError !== undefined) throw this.bodyError;
      if (err instanceof SmtpError) return err.reply;
      this.settings.onError({ kind: 'storage', ip: this.client.ip, detail: (err as Error).message });
      return err instanceof QueueStorageError ? reply(452, '4.3.1', 'Insufficient system storage') : reply(451, '4.3.0', 'Local error in processing');
    } finally {
      this.end();
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }

  private async receive(body: AsyncIterable<Buffer>): Promise<SmtpReply> {
    const s = this.settings;
    const now = s.clock.now();
    const id = newQueueId(now);
    const tap = new HeaderTap();
    let bytes = 0;
    const content = async function* (this: ReceiveTransaction): AsyncGenerator<Buffer> {
      yield tap.keep(Buffer.from(receivedField(this.client, s.hostname, id, now), 'latin1'));
      try {
        for await (const chunk of body) {
          if (this.abandoned) throw new ReceiveAbandoned();
          bytes += chunk.length;
          // Past the limit the rest is read (the client is owed its 552 only at the end) but not stored:
          // disk written follows the limit, not what a client chooses to send.
          if (bytes <= s.maxMessageSize) yield tap.keep(chunk);
        }
        if (this.abandoned) throw new ReceiveAbandoned();
      } catch (err) {
        this.bodyError = err;
        throw err;
      }
    }.call(this);
    const receipt = await s.store.receive(id, content);
    if (bytes > s.maxMessageSize) {
      await receipt.abandon();
      throw new SmtpError(reply(552, '5.3.4', `Message size exceeds the limit of ${s.maxMessageSize} bytes`));
    }
    const envelope: Envelope = {
      id,
      mailFrom: this.sender ?? '',
      recipients: this.recipients,
      size: receipt.size,
      // The bytes counted against the SIZE limit; the categorizer must judge the same ones.
      sentSize: bytes,
      receivedAt: now,
      client: this.client,
      ...(this.params.ret ? { ret: this.params.ret } : {}),
      ...(this.params.envid ? { envid: this.params.envid } : {}),
    };
    const messageId = tap.messageId();
    const message: QueuedMessage = {
      envelope,
      contentId: id,
      rootId: id,
      ...(messageId ? { messageId } : {}),
      kind: 'message',
      deliveries: [],
      attempts: 0,
      nextAttemptAt: 0,
    };
    const delivered = receipt.held ? await s.deliverNow(message, receipt.held) : undefined;
    // Delivered, the message needs no record: its slot (if it took one) is freed and nothing is left to deliver again.
    if (delivered) await receipt.abandon();
    else await receipt.commit(message);
    // The spec's words whether it was queued or is already in its mailbox (which is more than "queued").
    const queued = reply(250, '2.6.0', `<${id}@${s.hostname}> Queued mail for delivery`);
    s.onQueued(message, `250 2.6.0 ${queued.lines[0]}`, delivered);
    return queued;
  }
}
