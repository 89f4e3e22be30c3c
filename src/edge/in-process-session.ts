/**
 * A back-end session with a back end in this process (serve's bundled engine): the edge hands over
 * SMTP's transactions and gets SMTP's replies, the back end's own words, but no command or reply is
 * written or parsed, and the message goes over un-stuffed. The rules of the SMTP session still hold:
 * the original client is passed on with each transaction, the reply to the end of the message is the
 * back end's once it has stored it, a 421 drops the session, a message that fails mid-way (the client
 * went away, a limit was hit) abandons the back end's transaction so that nothing is stored, and a
 * back end that stops taking the message for `timeoutMs` is given up on (451 4.7.0).
 */
import { SmtpError, type SmtpReply } from '../net/smtp-reply.js';
import type { BackendConnection } from './backend-connection.js';
import type { ForwardedClient } from './backend-forward.js';
import { onWire } from './backend-relay.js';
import { BackendTimeout, BackendUnavailable } from './backend-unavailable.js';
import { CrlfLines } from './dot-stuffing.js';
import { passedOnReply } from './session-id-reply.js';

/** A back end in this process that takes SMTP's transactions without SMTP's text. */
export interface InProcessBackend {
  /** The listen address the rule set names for it (backend.url). */
  host: string;
  port: number;
  /** Begins a transaction for `client`; throws an SmtpError when the back end cannot take one (closing, refused). */
  begin(client: ForwardedClient): InProcessTransaction;
}

/** One transaction with a back end in this process; each step answers with the reply its SMTP server would give. */
export interface InProcessTransaction {
  mail(sender: string, params: { size?: number }): SmtpReply;
  rcpt(address: string): SmtpReply;
  /**
   * Reads `body` (un-stuffed, every line ending CRLF) as the back end stores it, and resolves with its
   * reply to the end of the message; rejects with the body's own error when the body fails.
   */
  data(body: AsyncIterable<Buffer>): Promise<SmtpReply>;
  /** Drops the transaction: nothing of it is stored (a body being read fails). */
  abandon(): void;
}

export class InProcessSession implements BackendConnection {
  transactions = 0;
  last = false;
  onClose: (() => void) | undefined;
  private tx: InProcessTransaction | undefined;
  private transactionOpen = false;
  private inData = false;
  private closed = false;
  private broken = false;

  constructor(
    private readonly backend: InProcessBackend,
    private readonly timeoutMs: number,
  ) {}

  get resettable(): boolean {
    return !this.closed && !this.broken && !this.inData;
  }

  get reusable(): boolean {
    return this.resettable && !this.transactionOpen;
  }

  async begin(client: ForwardedClient): Promise<void> {
    this.transactions += 1;
    this.drop();
    try {
      this.tx = this.backend.begin(client);
    } catch (err) {
      this.broken = true;
      throw new BackendUnavailable(err instanceof SmtpError ? `${err.reply.code} ${err.reply.lines.join(' ')}` : (err as Error).message);
    }
  }

  mailFrom(address: string, params?: { body?: string; size?: number }): Promise<SmtpReply>;
  mailFrom<T>(address: string, params: { body?: string; size?: number }, answered: (r: SmtpReply) => T, failed: (err: unknown) => T): Promise<T>;
  mailFrom(address: string, params: { body?: string; size?: number } = {}, answered?: (r: SmtpReply) => unknown, failed?: (err: unknown) => unknown): Promise<unknown> {
    const replied = this.mail(address, params);
    return answered && failed ? replied.then(answered, failed) : replied;
  }

  private async mail(address: string, params: { body?: string; size?: number }): Promise<SmtpReply> {
    const r = this.answer(this.current('MAIL FROM').mail(onWire(address), params.size !== undefined ? { size: params.size } : {}), 'MAIL FROM');
    this.transactionOpen = r.code < 400;
    // No transaction follows a refused MAIL FROM: the back end must not wait for it.
    if (!this.transactionOpen) this.drop();
    return r;
  }

  rcptTo(address: string): Promise<SmtpReply>;
  rcptTo<T>(address: string, answered: (r: SmtpReply) => T, failed: (err: unknown) => T): Promise<T>;
  rcptTo(address: string, answered?: (r: SmtpReply) => unknown, failed?: (err: unknown) => unknown): Promise<unknown> {
    const replied = this.rcpt(address);
    return answered && failed ? replied.then(answered, failed) : replied;
  }

  private async rcpt(address: string): Promise<SmtpReply> {
    return this.answer(this.current('RCPT TO').rcpt(onWire(address)), 'RCPT TO');
  }

  data(message: AsyncIterable<Buffer>, answered: (r: SmtpReply) => void, failed: (err: unknown) => void): void {
    this.relay(message).then(answered, failed);
  }

  private async relay(message: AsyncIterable<Buffer>): Promise<SmtpReply> {
    const tx = this.current('DATA');
    this.inData = true;
    const ms = this.timeoutMs;
    // The back end holds the message from the start, and whenever it has been handed a chunk and has not
    // asked for the next; the time spent waiting for the client is not its time.
    let holding = true;
    let since = Date.now();
    let stall!: (err: Error) => void;
    const stalled = new Promise<never>((_, reject) => (stall = reject));
    let timer: NodeJS.Timeout | undefined;
    const check = (): void => {
      const left = holding ? since + ms - Date.now() : ms;
      if (left > 0) timer = setTimeout(check, left);
      else stall(new BackendTimeout(`back end took no data for ${ms} ms`));
    };
    timer = setTimeout(check, ms);
    let messageError: unknown;
    const lines = new CrlfLines();
    const body = async function* (): AsyncGenerator<Buffer> {
      holding = false;
      try {
        for await (const chunk of message) {
          holding = true;
          since = Date.now();
          yield lines.push(chunk);
          holding = false;
        }
      } catch (err) {
        messageError = err;
        throw err;
      }
      holding = true;
      since = Date.now();
      const end = lines.end();
      if (end.length > 0) yield end;
    };
    const receiving = tx.data(body());
    // Given up on (stalled), the back end's transaction is abandoned: its late failure is that, already answered.
    receiving.catch(() => undefined);
    let r: SmtpReply;
    try {
      r = await Promise.race([receiving, stalled]);
    } catch (err) {
      this.abandon();
      if (messageError !== undefined) throw messageError;
      throw err instanceof BackendUnavailable ? err : new BackendUnavailable(`during DATA: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    this.tx = undefined;
    this.inData = false;
    this.transactionOpen = false;
    return this.answer(r, 'end of data');
  }

  async reset(): Promise<boolean> {
    if (!this.resettable) {
      this.abandon();
      return false;
    }
    this.drop();
    this.transactionOpen = false;
    return true;
  }

  async quit(): Promise<void> {
    this.abandon();
  }

  abandon(): void {
    this.drop();
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
  }

  private current(what: string): InProcessTransaction {
    if (this.closed || !this.tx) throw new BackendUnavailable(`${what}: no transaction begun`);
    return this.tx;
  }

  /** The back end's reply, passed on to the client as it is; a 421 (it is shutting down) drops the session. */
  private answer(r: SmtpReply, what: string): SmtpReply {
    if (r.code === 421) {
      this.abandon();
      throw new BackendUnavailable(`${what}: 421 ${r.lines.join(' ')}`);
    }
    return passedOnReply(r);
  }

  /** Abandons the back end's open transaction, if any. */
  private drop(): void {
    this.tx?.abandon();
    this.tx = undefined;
  }
}
