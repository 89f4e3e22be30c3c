/**
 * One client connection on one listener: turns each SMTP event into the policy's verdict, and an
 * accepted transaction into a lock-step back-end transaction (or a Badmail entry). The decisions are
 * the SessionPolicy's; this module only carries them out and says what to write.
 * Longer than 350 lines because it carries out every command of a session (with the pool, the shadow
 * and the record beside it); the DATA stages are the data-* modules.
 */
import type { Readable } from 'node:stream';
import type { SMTPServerSession } from 'smtp-server';
import type { ListenerConfig } from '../config/schema.js';
import { withCanonicalDomain } from '../net/address.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import type { SessionPolicy } from '../policy/session-policy.js';
import { STEPS } from '../policy/steps.js';
import type { Verdict } from '../policy/verdict.js';
import type { BackendPool } from './backend-pool.js';
import type { BackendConnection } from './backend-connection.js';
import type { ForwardedClient } from './backend-forward.js';
import type { BadmailWriter } from '../badmail/badmail-writer.js';
import { archiveMessage } from './data-archive.js';
import { authenticateMessage, type AuthenticatedMessage } from './data-auth.js';
import { HEADER_SECTION_MAX, judgeHeaderSection } from './data-header.js';
import { readHeaderPieces, type HeaderSection } from './header-from.js';
import { DataDeadline, DataLimits } from './data-limits.js';
import { messageChunks, relayMessage, relaySpooled } from './data-relay.js';
import { receivedField, receivedOpening, type ReceivedHop } from './received-header.js';
import { StreamChunks } from './stream-chunks.js';
import { Transaction } from './transaction.js';
import { reply, SmtpError, type SmtpReply } from '../net/smtp-reply.js';
import { BackendUnavailable, TEMPORARY_SERVER_ERROR } from './backend-unavailable.js';
import { ShadowSession } from './shadow-session.js';
import { passedKey, preGreetingTest, type ProtocolTestSettings } from './pre-greeting.js';
import type { StateStore } from '../state/state-store.js';
import type { RecordLog } from '../observability/record-log.js';
import { SessionRecorder } from './session-recorder.js';
import { recordDecision, type DecisionPlace } from './decision-observer.js';

/** The rule set a session runs under, fixed for its lifetime even when a reload swaps the current one. */
export interface Generation {
  engine: PolicyEngine;
  /** The back end's session pool: sessions of an old generation drain while the new one lends its own. */
  pool: BackendPool;
  badmail: BadmailWriter;
  /** The candidate rule set `shadow.rules` names, judging each session beside `engine` with no effect. */
  shadow?: PolicyEngine;
}

/** What the edge does with a command: the reply to write and whether to close afterwards. */
export interface Outcome {
  reply: SmtpReply;
  close?: boolean;
}

/** Shared by all sessions: where decisions and numbers go, and the state they share. */
export interface SessionServices {
  logger: Logger;
  metrics: Metrics;
  state: StateStore;
  /** The decision record log, when `records` is configured. */
  records?: RecordLog;
}

function fromVerdict(v: Verdict): SmtpReply {
  return reply(v.code, v.enhanced, v.text);
}

/** Reads what is left of a message answered before its end, counting it; a client gone meanwhile is nobody left to answer. */
async function drain(source: StreamChunks, count: (c: Buffer) => void): Promise<void> {
  try {
    for (let n = await source.next(); !n.done; n = await source.next()) count(n.value);
  } catch {
    // The client went away while the rest was drained; nobody is left to answer.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The edge side of one client connection; its mail transaction, while one is open, is a Transaction. */
export class EdgeSession {
  readonly policy: SessionPolicy;
  private transaction: Transaction | undefined;
  private messages = 0;
  private sessionBytes = 0;
  private heloSeen: string | undefined;
  private address: string | undefined;
  /** The client connection is gone: a session lent after that goes straight back. */
  private gone = false;
  private readonly shadow: ShadowSession | undefined;
  private readonly recorder: SessionRecorder | undefined;
  private forwarded: ForwardedClient | undefined;
  /** The Received: field's opening for the session's current HELO name, protocol and client host name (receivedOpening), as UTF-8. */
  private opening: { helo: string | undefined; protocol: string; hostname: string; bytes: Buffer } | undefined;
  private readonly dataDeadline = new DataDeadline();
  /** The reader and limits of the session's messages, made at its first DATA and started again for each message. */
  private dataReading: { source: StreamChunks; limits: DataLimits } | undefined;
  /** Told the outcome of the message being read (data): one message at a time per session. */
  private answerData: ((o: Outcome) => void) | undefined;
  private failData: ((err: Error) => void) | undefined;

  constructor(
    readonly generation: Generation,
    private readonly listener: ListenerConfig,
    private readonly smtp: SMTPServerSession,
    private readonly services: SessionServices,
    /** The balancer's address, when the client's came from its PROXY header. */
    peer?: string,
  ) {
    this.recorder = services.records ? new SessionRecorder(generation.engine, services.records, peer) : undefined;
    this.policy = generation.engine.session(listener.name, smtp.remoteAddress, (v) => this.record(v), this.recorder?.deps);
    // The shadow's context is built only when there is a shadow: a copy of the services per connection cost a slow path in V8.
    this.shadow = generation.shadow && new ShadowSession(generation.shadow, smtp.remoteAddress, { session: smtp.id, listener: listener.name, ...services });
  }

  /**
   * Back pressure, step 2, the connection rate limits, then step 1. Undefined: greet the client;
   * otherwise refuse with the reply and close. A promise only while a check waits (rate limits, the
   * pre-greeting pause): otherwise the client is greeted in the turn that accepted it, with no promise.
   */
  admit(): Outcome | undefined | Promise<Outcome | undefined> {
    const v = this.policy.admit();
    return v instanceof Promise ? v.then((settled) => this.admitted(settled)) : this.admitted(v);
  }

  private admitted(v: Verdict): Outcome | undefined | Promise<Outcome | undefined> {
    this.shadow?.connect(v);
    if (v.action === 'drop' || v.action === 'reject') return { reply: fromVerdict(v), close: true };
    const settings = this.protocolTests;
    return settings.greetPauseMs === 0 ? undefined : this.preGreeting(settings);
  }

  /** The listener's protocol tests as the session's rule set has them (a reload applies to new sessions). */
  private get protocolTests(): ProtocolTestSettings {
    return this.generation.engine.compiled.listeners.get(this.listener.name)?.config.protocolTests ?? this.listener.protocolTests;
  }

  /** Step 1, after step 2 has let the client in. Undefined: greet the client; otherwise refuse and close. */
  private async preGreeting(settings: ProtocolTestSettings): Promise<Outcome | undefined> {
    const teaser = `${this.generation.engine.rules.hostname} ESMTP`;
    const result = await preGreetingTest(this.smtp, this.policy.clientIp, settings, teaser, this.services.state, this.services.logger);
    this.services.metrics.protocolTest('pre-greeting', result);
    const v = this.policy.preGreeting(result, settings.greetPauseMs);
    return v.action === 'drop' ? { reply: fromVerdict(v), close: true } : undefined;
  }

  /** Step 1.1: the refusal of a client that pipelined without leave, or undefined when the listener does not test it. */
  unauthorisedPipelining(): SmtpReply | undefined {
    if (!this.protocolTests.pipelining) return undefined;
    this.services.metrics.protocolTest('pipelining', 'fail');
    // It passed the pre-greeting test once, but is no well-behaved client: it gets the pause again.
    this.services.state.delete(passedKey(this.policy.clientIp)).catch((err: unknown) => {
      this.services.logger.warn({ session: this.smtp.id, err: (err as Error).message }, 'protocol-test cache entry not removed');
    });
    return fromVerdict(this.policy.unauthorisedPipelining());
  }

  /**
   * MAIL FROM: limits, steps 5-7, then the back end's own answer to the sender. A promise only while
   * something is waited for (the back end, or a check that waits): each async frame and await cost a
   * promise and a turn of the microtask queue, and a reused connection's sender usually waits only for
   * the back end.
   */
  mailFrom(written: string, params: { body?: string; size?: number }): Outcome | Promise<Outcome> {
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
    const judged = this.policy.mail(address);
    return judged instanceof Promise ? judged.then((v) => this.senderJudged(address, params, v)) : this.senderJudged(address, params, judged);
  }

  /** MAIL FROM after steps 5-7 (and the message rate limits) gave `v`: step 7.2's SPF, then the transaction. */
  private senderJudged(address: string, params: { body?: string; size?: number }, v: Verdict): Outcome | Promise<Outcome> {
    this.shadow?.mailFrom(address, v);
    if (v.action === 'reject' || v.action === 'tempfail') return { reply: fromVerdict(v) };
    if (v.action === 'drop') return { reply: fromVerdict(v), close: true };
    if (v.action === 'accept') {
      const spf = this.policy.spf(address, this.smtp.hostNameAppearsAs || '');
      if (spf) return spf.then((refused) => (refused && refused.action !== 'accept' ? { reply: fromVerdict(refused) } : this.beginTransaction(address, params, v)));
    }
    return this.beginTransaction(address, params, v);
  }

  /** The sender passed: the transaction opens, and unless it goes to Badmail, the back end is asked. */
  private beginTransaction(address: string, params: { body?: string; size?: number }, v: Verdict): Outcome | Promise<Outcome> {
    const tx = (this.transaction = new Transaction(address));
    if (v.action === 'archive') return { reply: fromVerdict(v) };
    tx.backendOpenedAt = Date.now();
    const pool = this.generation.pool;
    return pool.begin(
      this.forwardedClient(),
      address,
      params,
      (session, r) => {
        tx.borrow(session, pool);
        if (this.gone) {
          tx.end();
          return { reply: r };
        }
        if (r.code >= 400) {
          this.finishRelay(tx, r.code);
          // No transaction follows a refused MAIL FROM: free the back end now, not at the client's next command.
          this.endTransaction();
        }
        return { reply: r };
      },
      (err: unknown) => ({ reply: this.backendFailed(tx, err) }),
    );
  }

  /** RCPT TO: relay protection, steps 9-12, harvest protection, then the back end's answer; a promise only while something is waited for (see mailFrom). */
  rcptTo(written: string): Outcome | Promise<Outcome> {
    // `postmaster` and U-label domains are judged and relayed in the form any back end can route.
    const address = this.policy.recipient(written);
    this.address = address;
    const judged = this.policy.rcptTo(address);
    return judged instanceof Promise ? judged.then((v) => this.recipientJudged(address, v)) : this.recipientJudged(address, judged);
  }

  private recipientJudged(address: string, v: Verdict): Outcome | Promise<Outcome> {
    this.shadow?.rcptTo(address, v);
    if (!v.delayMs) return this.recipientDecided(address, v);
    this.services.metrics.harvest('delayed');
    return sleep(v.delayMs).then(() => this.recipientDecided(address, v));
  }

  /** RCPT TO after its verdict (and harvest protection's delay): the refusal, Badmail's acceptance, or the back end's answer. */
  private recipientDecided(address: string, v: Verdict): Outcome | Promise<Outcome> {
    if (v.action === 'drop') {
      if (v.step === STEPS.harvest.step) this.services.metrics.harvest('disconnected');
      return { reply: fromVerdict(v), close: true };
    }
    if (v.action !== 'accept') return { reply: fromVerdict(v) };
    const tx = this.transaction;
    if (tx && this.policy.archive) {
      tx.recipients.push(address);
      return { reply: fromVerdict(v) };
    }
    if (!tx?.backend) return { reply: TEMPORARY_SERVER_ERROR };
    return tx.backend.rcptTo(
      address,
      (r): Outcome => {
        if (r.code < 400) tx.recipients.push(address);
        return { reply: r };
      },
      (err: unknown): Outcome => ({ reply: this.backendFailed(tx, err) }),
    );
  }

  /**
   * DATA: reads the header section, runs step 15 on its From:, then streams the message to the back
   * end (or Badmail) while the client is still sending it. The whole message is always read from the
   * client before the reply, so a refusal never leaves body lines to be taken as commands.
   *
   * `answered` gets the outcome, or `failed` what broke the edge's own bookkeeping after it; exactly
   * one runs, once. Continuations, not a promise: the steps after the header section hand their
   * outcome on (dataAnswered, dataFailed) rather than each resolve a promise of its own, so that the
   * back end's reply to the final dot reaches the client's reply in the turn it is read. Every path
   * ends in dataAnswered exactly once.
   */
  data(stream: Readable, onTimeout: (r: SmtpReply) => void, answered: (o: Outcome) => void, failed: (err: Error) => void): void {
    const reading = (this.dataReading ??= { source: new StreamChunks(), limits: new DataLimits(this.listener.limits, this.dataDeadline) });
    reading.source.read(stream);
    reading.limits.start(this.sessionBytes, onTimeout);
    this.answerData = answered;
    this.failData = failed;
    const tx = this.transaction;
    if (tx) this.judgeAndSend(tx, reading.source, reading.limits.count);
    else this.dataAnswered({ reply: TEMPORARY_SERVER_ERROR });
  }

  /** The message's relay or refusal failed with `err`: the reply it becomes. */
  private dataFailed(tx: Transaction, err: unknown): void {
    if (err instanceof SmtpError) {
      tx.abandonBackend();
      return this.dataAnswered({ reply: err.reply, close: err.reply.code === 421 });
    }
    // The client's stream failed: it went away mid-DATA. The back end is abandoned before its dot.
    this.services.logger.info({ session: this.smtp.id, err: (err as Error).message }, 'client went away during DATA');
    if (tx.backend) this.services.metrics.relay('aborted', (Date.now() - tx.backendOpenedAt) / 1000);
    tx.abandonBackend();
    this.dataAnswered({ reply: TEMPORARY_SERVER_ERROR, close: true });
  }

  /** The message has its outcome: the rest of it is read (and counted), then the client is answered. */
  private dataAnswered(outcome: Outcome): void {
    const { source, limits } = this.dataReading as { source: StreamChunks; limits: DataLimits };
    limits.stopEnforcing();
    // A relayed message was read to its end: no turn of the microtask queue to be told so again.
    if (source.finished) return this.dataDone(outcome);
    drain(source, limits.count).then(() => this.dataDone(outcome));
  }

  private dataDone(outcome: Outcome): void {
    const answered = this.answerData as (o: Outcome) => void;
    const failed = this.failData as (err: Error) => void;
    this.answerData = undefined;
    this.failData = undefined;
    try {
      const limits = (this.dataReading as { limits: DataLimits }).limits;
      limits.done();
      this.sessionBytes += limits.bytes;
      this.messages += 1;
      this.endTransaction();
    } catch (err) {
      return failed(err as Error);
    }
    answered(outcome);
  }

  /** smtp-server forgot the transaction (RSET, HELO/EHLO): so does the edge, and the back-end session goes back to the pool after RSET. */
  reset(): void {
    this.endTransaction();
  }

  /** The connection is gone: whatever transaction was open is abandoned. */
  close(): void {
    this.gone = true;
    this.dataDeadline.stop();
    this.transaction?.abandonBackend();
    this.policy.close()?.catch((err: unknown) => this.services.logger.warn({ session: this.smtp.id, err: (err as Error).message }, 'concurrency slot not given back'));
    this.recorder?.close(this.policy, this.smtp.id, this.listener.name);
  }

  /** Step 15, then Badmail, a refusal, or the back end; ends in dataAnswered or dataFailed. */
  private judgeAndSend(tx: Transaction, source: StreamChunks, count: (c: Buffer) => void): void {
    // An archive chosen at step 7 is recorded as step 7's, even though step 15 confirms it.
    const archivedAt = this.policy.archive;
    this.address = undefined;
    readHeaderPieces(
      source,
      HEADER_SECTION_MAX,
      count,
      (section) => {
        try {
          this.headerRead(tx, source, count, section, archivedAt);
        } catch (err) {
          this.dataFailed(tx, err);
        }
      },
      (err: unknown) => this.dataFailed(tx, err),
    );
  }

  private headerRead(tx: Transaction, source: StreamChunks, count: (c: Buffer) => void, section: HeaderSection, archivedAt: Verdict | undefined): void {
    const judged = judgeHeaderSection(section, this.headerFrom);
    if ('refused' in judged) {
      tx.abandonBackend();
      this.services.logger.info({ session: this.smtp.id }, 'message refused: its first line continues the Received: field');
      return this.dataAnswered({ reply: judged.refused });
    }
    const v = judged.verdict;
    const rest = section.ended ? undefined : source;
    if (v.action === 'archive') {
      tx.abandonBackend();
      const envelope = { id: this.smtp.id, sender: tx.sender, recipients: tx.recipients, listener: this.listener.name, clientIp: this.policy.clientIp, helo: this.smtp.hostNameAppearsAs || '' };
      archiveMessage(this.generation.badmail, messageChunks([section.read], rest, count), envelope, archivedAt ?? v).then(
        () => {
          this.services.metrics.badmail();
          this.dataAnswered({ reply: fromVerdict(v) });
        },
        (err: unknown) => this.dataFailed(tx, err),
      );
      return;
    }
    if (v.action !== 'relay') {
      tx.abandonBackend();
      return this.dataAnswered({ reply: fromVerdict(v), close: v.action === 'drop' });
    }
    const backend = tx.backend;
    if (!backend) return this.dataAnswered({ reply: TEMPORARY_SERVER_ERROR });
    if (this.policy.authenticatesSenders) {
      this.authenticateAndSend(tx, backend, section, rest, count).then(
        (o) => this.dataAnswered(o),
        (err: unknown) => this.dataFailed(tx, err),
      );
      return;
    }
    relayMessage(
      backend,
      this.receivedField(tx),
      [section.read],
      rest,
      count,
      (r) => {
        this.finishRelay(tx, r.code);
        this.dataAnswered({ reply: r });
      },
      (err: unknown) => this.relayFailed(tx, err),
    );
  }

  /** The back end failed the relay: a 4xx for the client; anything else is the message's own failure. */
  private relayFailed(tx: Transaction, err: unknown): void {
    if (err instanceof BackendUnavailable) this.dataAnswered({ reply: this.backendFailed(tx, err) });
    else this.dataFailed(tx, err);
  }

  /** The message's Received: field, naming its one recipient when it has one. */
  private receivedField(tx: Transaction): Buffer {
    return receivedField(this.receivedOpening(), tx.recipients.length === 1 ? tx.recipients[0] : undefined, new Date());
  }

  /** Steps 7.3-7.5 on the whole message (spooled), then the spooled message with the forged results removed to the back end. */
  private async authenticateAndSend(tx: Transaction, backend: BackendConnection, section: HeaderSection, rest: StreamChunks | undefined, count: (c: Buffer) => void): Promise<Outcome> {
    const authed = await authenticateMessage(this.policy, section.head, messageChunks([section.rest], rest, count), this.generation.engine.rules.senderAuth.spool, { sender: tx.sender, helo: this.smtp.hostNameAppearsAs || '' });
    try {
      if (authed.removed > 0) this.services.logger.info({ session: this.smtp.id, removed: authed.removed }, 'forged Authentication-Results removed');
      if (authed.verdict.action !== 'relay') {
        tx.abandonBackend();
        return { reply: fromVerdict(authed.verdict) };
      }
      const r = await relaySpooled(backend, this.receivedField(tx), authed.message);
      this.finishRelay(tx, r.code);
      return { reply: r };
    } catch (err) {
      if (err instanceof BackendUnavailable) return { reply: this.backendFailed(tx, err) };
      throw err;
    } finally {
      await this.disposeSpool(authed);
    }
  }

  /** A spool file that cannot be removed is the operator's to clean up: said, not thrown at a client already answered. */
  private async disposeSpool(authed: AuthenticatedMessage): Promise<void> {
    await authed.dispose().catch((err: unknown) => this.services.logger.error({ session: this.smtp.id, err: (err as Error).message }, 'spool file not removed'));
  }

  /** One log line and one metric per decision. */
  private record(v: Verdict): void {
    this.recorder?.observe(v);
    recordDecision(this.services, v, this.place);
  }

  /** Step 15 on a message's From: address, live and shadowed; one function per session, not per message. */
  private readonly headerFrom = (from: string | undefined): Verdict => {
    const v = this.policy.headerFrom(from);
    this.shadow?.headerFrom(from, v);
    return v;
  };

  private readonly place = (): DecisionPlace => ({
    session: this.smtp.id,
    client: this.policy?.clientIp ?? this.smtp.remoteAddress,
    listener: this.listener.name,
    address: this.address,
  });

  /**
   * The client as the back end is told of it (XFORWARD, XCLIENT): one object while the HELO name and
   * greeting command stay the same, never changed once made, so that its attributes are formatted once
   * (forwardAttributes) for all its transactions.
   */
  private forwardedClient(): ForwardedClient {
    const helo = this.smtp.hostNameAppearsAs || undefined;
    const proto = this.smtp.openingCommand === 'EHLO' ? 'ESMTP' : 'SMTP';
    const known = this.forwarded;
    if (known && known.helo === helo && known.proto === proto) return known;
    const client: ForwardedClient = { address: this.policy.clientIp, helo, proto };
    if (this.listener.reverseDns && !this.smtp.clientHostname.startsWith('[')) client.hostname = this.smtp.clientHostname;
    this.forwarded = client;
    return client;
  }

  /**
   * The Received: field's opening for this session's hop, formatted again only when the HELO name, the
   * protocol (a new EHLO, STARTTLS) or the client's host name changes: a reused connection's messages share it.
   */
  private receivedOpening(): Buffer {
    const helo = this.smtp.hostNameAppearsAs || undefined;
    const protocol = this.smtp.transmissionType || 'ESMTP';
    const hostname = this.smtp.clientHostname;
    const known = this.opening;
    if (known && known.helo === helo && known.protocol === protocol && known.hostname === hostname) return known.bytes;
    const hop: ReceivedHop = { helo, clientIp: this.policy.clientIp, by: this.generation.engine.rules.hostname, id: this.smtp.id, protocol };
    if (this.listener.reverseDns && !hostname.startsWith('[')) hop.clientHostname = hostname;
    this.opening = { helo, protocol, hostname, bytes: Buffer.from(receivedOpening(hop)) };
    return this.opening.bytes;
  }

  private noteHelo(): void {
    const helo = this.smtp.hostNameAppearsAs || '';
    if (helo === this.heloSeen) return;
    this.heloSeen = helo;
    this.policy.helo(helo, this.smtp.localAddress);
    this.shadow?.helo(helo, this.smtp.localAddress);
  }

  private backendFailed(tx: Transaction, err: unknown): SmtpReply {
    this.services.logger.warn({ session: this.smtp.id, err: (err as Error).message }, 'back end unavailable');
    tx.abandonBackend();
    this.services.metrics.relay('failed', (Date.now() - tx.backendOpenedAt) / 1000);
    if (err instanceof SmtpError) return err.reply;
    return TEMPORARY_SERVER_ERROR;
  }

  private finishRelay(tx: Transaction, code: number): void {
    this.recorder?.backendReplied(code);
    const outcome = code < 400 ? 'delivered' : code < 500 ? 'tempfail' : 'rejected';
    this.services.metrics.relay(outcome, (Date.now() - tx.backendOpenedAt) / 1000);
  }

  /**
   * Drops the current transaction: its back-end session goes back to the pool, the policy forgets the
   * archive choice (and, when no decision record is kept, what it judged).
   */
  private endTransaction(): void {
    const tx = this.transaction;
    this.transaction = undefined;
    this.policy.resetTransaction();
    if (!this.recorder) this.policy.forgetJudged();
    this.shadow?.resetTransaction();
    tx?.end();
  }
}
