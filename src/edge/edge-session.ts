/**
 * One client connection on one listener: turns each SMTP event into the policy's verdict, and an
 * accepted transaction into a lock-step back-end transaction (or a Badmail entry). The decisions are
 * the SessionPolicy's; this module only carries them out and says what to write.
 */
import type { Readable } from 'node:stream';
import type { SMTPServerSession } from 'smtp-server';
import type { ListenerConfig } from '../config/schema.js';
import { withCanonicalDomain } from '../net/address.js';
import { logDecision, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import type { SessionPolicy } from '../policy/session-policy.js';
import { STEPS } from '../policy/steps.js';
import { replyLine, type Verdict } from '../policy/verdict.js';
import { BackendSession, type BackendTarget } from './backend-relay.js';
import type { BadmailWriter } from '../badmail/badmail-writer.js';
import { noteMessageBytes } from './gc-pacer.js';
import { headerFromAddress, readHeaderSection } from './header-from.js';
import { receivedHeader } from './received-header.js';
import { reply, SmtpError, type SmtpReply } from '../net/smtp-reply.js';
import { BackendUnavailable, TEMPORARY_SERVER_ERROR } from './backend-unavailable.js';

/** The rule set a session runs under, fixed for its lifetime even when a reload swaps the current one. */
export interface Generation {
  engine: PolicyEngine;
  backend: BackendTarget;
  badmail: BadmailWriter;
}

/** What the edge does with a command: the reply to write and whether to close afterwards. */
export interface Outcome {
  reply: SmtpReply;
  close?: boolean;
}

/** Shared by all sessions: where decisions and numbers go. */
export interface SessionServices {
  logger: Logger;
  metrics: Metrics;
}

/** The header section is judged on at most this much; longer header sections are judged on their start. */
const HEADER_SECTION_MAX = 256 * 1024;

/**
 * A message whose first line opens with a space or tab would continue the edge's own Received: field,
 * making the client's text part of the trace the edge vouches for. No header section may open with a
 * continuation line (RFC 5322 2.2.3), so such a message is refused rather than repaired.
 */
const CONTINUATION_REFUSED = reply(554, '5.6.0', 'Message header section must not open with white space');

function opensWithContinuation(head: Buffer): boolean {
  return head[0] === 0x20 || head[0] === 0x09;
}

function fromVerdict(v: Verdict): SmtpReply {
  return reply(v.code, v.enhanced, v.text);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The edge side of one client connection. */
export class EdgeSession {
  readonly policy: SessionPolicy;
  private backend: BackendSession | undefined;
  private backendOpenedAt = 0;
  private recipients: string[] = [];
  private sender = '';
  private messages = 0;
  private sessionBytes = 0;
  private heloSeen: string | undefined;
  private address: string | undefined;

  constructor(
    readonly generation: Generation,
    private readonly listener: ListenerConfig,
    private readonly smtp: SMTPServerSession,
    private readonly services: SessionServices,
  ) {
    this.policy = generation.engine.session(listener.name, smtp.remoteAddress, (v) => this.record(v));
  }

  /** Step 2. Undefined: greet the client; otherwise refuse with the reply and close. */
  connect(): Outcome | undefined {
    const v = this.policy.connect();
    return v.action === 'drop' || v.action === 'reject' ? { reply: fromVerdict(v), close: true } : undefined;
  }

  /** MAIL FROM: limits, steps 5-7, then the back end's own answer to the sender. */
  async mailFrom(written: string, params: { body?: string; size?: number }): Promise<Outcome> {
    // Relayed with the domain as the client wrote it in ASCII, not as smtp-server decoded it.
    const address = withCanonicalDomain(written);
    this.endTransaction();
    const limits = this.listener.limits;
    if (this.messages >= limits.maxMessagesPerConnection) {
      return { reply: reply(421, '4.7.0', 'Too many messages in one connection, closing'), close: true };
    }
    if (params.size !== undefined && this.sessionBytes + params.size > limits.maxSessionSize) {
      return { reply: reply(421, '4.7.0', 'Session size limit reached, closing'), close: true };
    }
    this.noteHelo();
    this.address = address;
    const v = this.policy.mailFrom(address);
    if (v.action === 'reject') return { reply: fromVerdict(v) };
    if (v.action === 'drop') return { reply: fromVerdict(v), close: true };
    this.sender = address;
    if (v.action === 'archive') return { reply: fromVerdict(v) };
    try {
      this.backendOpenedAt = Date.now();
      this.backend = await BackendSession.open(this.generation.backend, {
        address: this.policy.clientIp,
        ...(this.listener.reverseDns && !this.smtp.clientHostname.startsWith('[') ? { hostname: this.smtp.clientHostname } : {}),
        helo: this.smtp.hostNameAppearsAs || undefined,
        proto: this.smtp.openingCommand === 'EHLO' ? 'ESMTP' : 'SMTP',
      } as const);
      const r = await this.backend.mailFrom(address, params);
      if (r.code >= 400) {
        this.finishRelay(r.code);
        // No transaction follows a refused MAIL FROM: free the back end now, not at the client's next command.
        this.endTransaction();
      }
      return { reply: r };
    } catch (err) {
      return { reply: this.backendFailed(err) };
    }
  }

  /** RCPT TO: relay protection, steps 9-12, harvest protection, then the back end's answer. */
  async rcptTo(written: string): Promise<Outcome> {
    // `postmaster` and U-label domains are judged and relayed in the form any back end can route.
    const address = this.policy.recipient(written);
    this.address = address;
    const v = await this.policy.rcptTo(address);
    if (v.delayMs) {
      this.services.metrics.harvest('delayed');
      await sleep(v.delayMs);
    }
    if (v.action === 'drop') {
      if (v.step === STEPS.harvest.step) this.services.metrics.harvest('disconnected');
      return { reply: fromVerdict(v), close: true };
    }
    if (v.action !== 'accept') return { reply: fromVerdict(v) };
    if (this.policy.archive) {
      this.recipients.push(address);
      return { reply: fromVerdict(v) };
    }
    if (!this.backend) return { reply: TEMPORARY_SERVER_ERROR };
    try {
      const r = await this.backend.rcptTo(address);
      if (r.code < 400) this.recipients.push(address);
      return { reply: r };
    } catch (err) {
      return { reply: this.backendFailed(err) };
    }
  }

  /**
   * DATA: reads the header section, runs step 15 on its From:, then streams the message to the back
   * end (or Badmail) while the client is still sending it. The whole message is always read from the
   * client before the reply, so a refusal never leaves body lines to be taken as commands.
   */
  async data(stream: Readable, onTimeout: (r: SmtpReply) => void): Promise<Outcome> {
    const limits = this.listener.limits;
    const source = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let bytes = 0;
    let enforce = true;
    const count = (chunk: Buffer): void => {
      bytes += chunk.length;
      noteMessageBytes(chunk.length);
      if (!enforce) return;
      if (bytes > limits.maxMessageSize) throw new SmtpError(reply(552, '5.3.4', 'Message size exceeds fixed maximum message size'));
      if (this.sessionBytes + bytes > limits.maxSessionSize) throw new SmtpError(reply(421, '4.7.0', 'Session size limit reached, closing'));
    };
    const timer = setTimeout(() => onTimeout(reply(421, '4.4.2', 'Data timeout, closing connection')), limits.dataTimeoutMs);
    let outcome: Outcome;
    try {
      outcome = await this.judgeAndSend(source, count);
    } catch (err) {
      this.abandonBackend();
      if (err instanceof SmtpError) {
        outcome = { reply: err.reply, close: err.reply.code === 421 };
      } else {
        // The client's stream failed: it went away mid-DATA. The back end was abandoned before its dot.
        this.services.logger.info({ session: this.smtp.id, err: (err as Error).message }, 'client went away during DATA');
        outcome = { reply: TEMPORARY_SERVER_ERROR, close: true };
      }
    } finally {
      enforce = false;
    }
    try {
      for (let n = await source.next(); !n.done; n = await source.next()) count(n.value);
    } catch {
      // The client went away while the rest was drained; nobody is left to answer.
    }
    clearTimeout(timer);
    this.sessionBytes += bytes;
    this.messages += 1;
    this.endTransaction();
    return outcome;
  }

  /** The connection is gone: whatever transaction was open is abandoned. */
  close(): void {
    this.abandonBackend();
  }

  private async judgeAndSend(source: AsyncIterator<Buffer>, count: (c: Buffer) => void): Promise<Outcome> {
    const section = await readHeaderSection(source, HEADER_SECTION_MAX, count);
    this.address = undefined;
    if (opensWithContinuation(section.head)) {
      this.abandonBackend();
      this.services.logger.info({ session: this.smtp.id }, 'message refused: its first line continues the Received: field');
      return { reply: CONTINUATION_REFUSED };
    }
    // An archive chosen at step 7 is recorded as step 7's, even though step 15 confirms it.
    const archivedAt = this.policy.archive;
    const v = this.policy.headerFrom(headerFromAddress(section.head));
    const body = async function* (): AsyncGenerator<Buffer> {
      yield section.head;
      if (section.rest.length) yield section.rest;
      if (section.ended) return;
      for (let n = await source.next(); !n.done; n = await source.next()) {
        count(n.value);
        yield n.value;
      }
    };
    if (v.action === 'archive') {
      const why = archivedAt ?? v;
      this.abandonBackend();
      await this.generation.badmail.write(body(), {
        id: this.smtp.id,
        time: new Date().toISOString(),
        source: 'archive',
        sender: this.sender,
        recipients: [...this.recipients],
        reason: `step ${why.step} ${why.check}${why.rule !== undefined ? `: ${why.rule}` : ''}`,
        listener: this.listener.name,
        clientIp: this.policy.clientIp,
        helo: this.smtp.hostNameAppearsAs || '',
        step: why.step,
        check: why.check,
        ...(why.rule !== undefined ? { rule: why.rule } : {}),
      });
      this.services.metrics.badmail();
      return { reply: fromVerdict(v) };
    }
    if (v.action !== 'relay') {
      this.abandonBackend();
      return { reply: fromVerdict(v), close: v.action === 'drop' };
    }
    const backend = this.backend;
    if (!backend) return { reply: TEMPORARY_SERVER_ERROR };
    const received = Buffer.from(
      receivedHeader({
        helo: this.smtp.hostNameAppearsAs || undefined,
        ...(this.listener.reverseDns && !this.smtp.clientHostname.startsWith('[') ? { clientHostname: this.smtp.clientHostname } : {}),
        clientIp: this.policy.clientIp,
        by: this.generation.engine.rules.hostname,
        id: this.smtp.id,
        protocol: this.smtp.transmissionType || 'ESMTP',
        ...(this.recipients.length === 1 ? { recipient: this.recipients[0] } : {}),
        date: new Date(),
      }),
    );
    const withTrace = async function* (): AsyncGenerator<Buffer> {
      yield received;
      yield* body();
    };
    try {
      const r = await backend.data(withTrace());
      this.finishRelay(r.code);
      return { reply: r };
    } catch (err) {
      if (err instanceof BackendUnavailable) return { reply: this.backendFailed(err) };
      throw err;
    }
  }

  /** One log line and one metric per decision. */
  private record(v: Verdict): void {
    this.services.metrics.verdict(v);
    logDecision(this.services.logger, {
      session: this.smtp.id,
      client: this.policy?.clientIp ?? this.smtp.remoteAddress,
      listener: this.listener.name,
      step: v.step,
      check: v.check,
      ...(v.rule !== undefined ? { rule: v.rule } : {}),
      reply: v.code > 0 ? replyLine(v) : '',
      action: v.action,
      ...(v.reportOnly ? { reportOnly: true } : {}),
      ...(this.address !== undefined ? { address: this.address } : {}),
    });
  }

  private noteHelo(): void {
    const helo = this.smtp.hostNameAppearsAs || '';
    if (helo === this.heloSeen) return;
    this.heloSeen = helo;
    this.policy.helo(helo);
  }

  private backendFailed(err: unknown): SmtpReply {
    this.services.logger.warn({ session: this.smtp.id, err: (err as Error).message }, 'back end unavailable');
    this.abandonBackend();
    this.services.metrics.relay('failed', (Date.now() - this.backendOpenedAt) / 1000);
    if (err instanceof SmtpError) return err.reply;
    return TEMPORARY_SERVER_ERROR;
  }

  private finishRelay(code: number): void {
    const outcome = code < 400 ? 'delivered' : code < 500 ? 'tempfail' : 'rejected';
    this.services.metrics.relay(outcome, (Date.now() - this.backendOpenedAt) / 1000);
  }

  private abandonBackend(): void {
    this.backend?.abandon();
    this.backend = undefined;
  }

  /** Ends the current transaction: the back end is told QUIT, the policy forgets the archive choice. */
  private endTransaction(): void {
    const backend = this.backend;
    this.backend = undefined;
    this.recipients = [];
    this.sender = '';
    this.policy.resetTransaction();
    // QUIT is a courtesy; the client's reply does not wait for it and it never throws.
    if (backend) void backend.quit();
  }
}
