/**
 * The filtering order for one connection. Longer than 350 lines because it is the one state machine
 * every step's entry point belongs to, with the state the steps share (accept list hit, DNSBL outcome,
 * sender, SPF result, admission slots); each check itself is a module of its own beside it.
 */
import type { Readable } from 'node:stream';
import { authenticationResults } from '../auth/auth-results-header.js';
import type { SenderAuth, SpfCheck } from '../auth/sender-auth.js';
import type { ListenerSenderAuth } from '../config/schema.js';
import { normalizeIp } from '../net/ip.js';
import { acceptListEntry, checkAcceptDeny } from './accept-deny.js';
import type { CompiledListener, CompiledRules } from './compiled-rules.js';
import { checkDirectory } from './directory.js';
import { evaluateStep9, noDnsblRules, type DnsblOutcome } from './dnsbl/evaluate.js';
import type { ScoreSummary } from './dnsbl/score.js';
import { exceptionEntry } from './exceptions.js';
import { HarvestGuard } from './harvest.js';
import type { LimitPorts, Limits } from './limits.js';
import type { Admission, RateLimits } from './rate-limits.js';
import type { Directory } from '../directory/directory-model.js';
import type { DnsblAnswerOrPromise } from '../dns/dnsbl-answer.js';
import type { DnsblLookup } from '../dns/dnsbl-lookup.js';
import type { ZoneHealth } from '../dns/zone-health.js';
import type { HostNameLookup } from '../dns/forward-confirmed.js';
import { checkFcrdns, checkHeloName } from './helo-checks.js';
import { checkIpRestrictions } from './ip-restrictions.js';
import { pipeliningVerdict, preGreetingVerdict, type PreGreetingResult } from './protocol-tests.js';
import { recipientAddress } from './recipient-address.js';
import { checkBlockedRecipient } from './recipient-filter.js';
import { checkRelay } from './relay-protection.js';
import { checkSender } from './sender-filter.js';
import { judgeMessage, judgeSpf } from './sender-auth-checks.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';
import type { JudgedEvent, SessionEvent } from './session-events.js';

/** What a session needs from the outside world. */
export interface SessionDeps {
  dnsbl: DnsblLookup;
  health: ZoneHealth;
  directory: Directory;
  /** Called once per session that computed a DNSBL score (scoring mode), for the metrics. */
  onDnsblScore?: (score: ScoreSummary) => void;
  /** The store, clock and probe of rate limits, back pressure and greylisting (docs/limits.md). */
  limits?: LimitPorts;
  /** Forward-confirmed reverse DNS, for the HELO checks' `fcrdns`. */
  hostNames?: HostNameLookup;
  /** SPF, DKIM, DMARC and ARC, for listeners with `senderAuth`. */
  senderAuth?: SenderAuth;
}

/** Steps 15.1-15.3 on a message: the verdict, and the header fields to put on top of it. */
export interface AuthenticatedVerdict {
  verdict: Verdict;
  /** Authentication-Results (and X-Portcullis-Quarantine when DMARC's quarantine is enforced), CRLF-terminated. */
  headers: string;
}

/** Called with every decision the session makes, report-only DNSBL matches included. */
export type DecisionObserver = (v: Verdict) => void;

/**
 * The filtering order for one connection, as a small state machine driven by SMTP events:
 * connect (step 2), MAIL FROM (5-7), each RCPT TO (relay, 9-12, harvest), the header From: (15).
 */
export class SessionPolicy {
  readonly clientIp: string;
  get trace(): TraceEntry[] {
    return this.traced;
  }

  /** Every event judged, with its verdict: the session's inputs, for the decision record. */
  get events(): JudgedEvent[] {
    return this.judgedEvents;
  }

  private traced: TraceEntry[] = [];
  private judgedEvents: JudgedEvent[] = [];
  private readonly connectionFiltering: boolean;
  private acceptedBy: string | undefined;
  /** The session's DNSBL lookups by zone, made when they start: a rule set without zones holds no Map per connection. */
  private answers: Map<string, DnsblAnswerOrPromise> | undefined;
  private dnsbl: Promise<DnsblOutcome> | undefined;
  /** Step 9's outcome once it has come, so that later recipients need not wait for it. */
  private dnsblDone: DnsblOutcome | undefined;
  private readonly harvest: HarvestGuard;
  private archiveVerdict: Verdict | undefined;
  private dnsAllowlisted = false;
  private sender = '';
  /** The last address `recipient` was asked about, and its answer. */
  private lastRecipient = { address: '', form: '' };
  private admission: Admission | undefined;
  private closed = false;
  /** Step 3's HELO checks, when the listener has any on and the client is not exempt from connection filtering. */
  private heloName: Verdict | undefined;
  private fcrdns: Promise<{ verdict: Verdict | undefined; trace: TraceEntry[] }> | undefined;
  private fcrdnsTraced = false;
  private heloNameChecked = false;
  private heloPassed = false;
  private spfCheck: SpfCheck | undefined;

  constructor(
    private readonly rules: CompiledRules,
    private readonly listener: CompiledListener,
    clientIp: string,
    private readonly deps: SessionDeps,
    private readonly observe: DecisionObserver = () => {},
    private readonly limits: Limits = {},
  ) {
    this.clientIp = normalizeIp(clientIp);
    this.connectionFiltering = listener.config.filters.connection;
    this.harvest = new HarvestGuard(rules.rules.harvest);
  }

  /** The verdict that sends the current transaction to Badmail, if a step chose `archive`. */
  get archive(): Verdict | undefined {
    return this.archiveVerdict;
  }

  /**
   * Whether the client skips the remaining connection checks (greylisting among them): it is on the
   * accept list, or step 9 found it on a DNS allowlist (an allow rule, or a score at or below
   * allowThreshold). The DNS part is known once step 9 has run, at the first RCPT TO.
   */
  get allowlisted(): boolean {
    return this.connectionFiltering && (this.acceptedBy !== undefined || this.dnsAllowlisted);
  }

  /** Step 2, and the start of the session's DNSBL lookups so their answers are ready by RCPT TO. */
  connect(): Verdict {
    const v = checkIpRestrictions(this.listener, this.clientIp, this.rules.rules.hostname, this.trace);
    if (v.action === 'accept' && this.connectionFiltering) {
      this.acceptedBy = acceptListEntry(this.rules, this.clientIp);
      // A client on the deny list is dropped at MAIL FROM: its lookups would only spend the lists' quota.
      if (this.acceptedBy === undefined && this.rules.denyList.match(this.clientIp) === undefined) this.startLookups();
      if (this.acceptedBy === undefined && this.listener.config.heloChecks.fcrdns) {
        const trace: TraceEntry[] = [];
        this.fcrdns = checkFcrdns(this.clientIp, this.deps.hostNames, trace).then((found) => ({ verdict: found, trace }));
      }
    }
    return this.judged({ kind: 'connect' }, this.decide(v));
  }

  /**
   * The whole connection stage: back pressure (1.2), step 2, then the connection rate limits (2.1).
   * A promise only when rate limits are configured: they are counted in the state store.
   */
  admit(): Verdict | Promise<Verdict> {
    const pressed = this.limits.backPressure?.connection(this.trace);
    if (pressed) return this.decide(pressed);
    const v = this.connect();
    if (v.action !== 'accept' || !this.limits.rateLimits) return v;
    return this.rateLimited(this.limits.rateLimits, v);
  }

  private async rateLimited(rateLimits: RateLimits, v: Verdict): Promise<Verdict> {
    this.admission = await rateLimits.connect(this.clientIp, this.trace);
    // The client may have gone while its slots were being counted: close() found nothing to give back.
    if (this.closed) await this.admission.release();
    return this.admission.verdict ? this.decide(this.admission.verdict) : v;
  }

  /**
   * The whole MAIL FROM stage: back pressure (1.2), steps 5-7, then the message rate limits (7.1). A
   * promise only when the rate limits are counted: without them nothing is waited for, and an async
   * frame per message cost more than steps 5-7 themselves.
   */
  mail(address: string): Verdict | Promise<Verdict> {
    const pressed = this.limits.backPressure?.transaction(this.trace);
    if (pressed) return this.decide(pressed);
    const v = this.mailFrom(address);
    if ((v.action !== 'accept' && v.action !== 'archive') || !this.limits.rateLimits) return v;
    return this.messageLimited(this.limits.rateLimits, address, v);
  }

  /** Step 7.1 for a sender steps 5-7 let through (`v`). */
  private async messageLimited(rateLimits: RateLimits, address: string, v: Verdict): Promise<Verdict> {
    const limited = await rateLimits.message(this.clientIp, address, this.trace);
    return limited ? this.decide(limited) : v;
  }

  /** The session is over: its concurrency slots are given back (a promise only when it holds any). */
  close(): Promise<void> | undefined {
    this.closed = true;
    return this.admission?.release();
  }

  /** Step 1 and 1.1, the wire tests the edge runs: how the client fared, traced, logged and counted like any step. */
  preGreeting(result: PreGreetingResult, pauseMs: number): Verdict {
    return this.wireTest(preGreetingVerdict(result, pauseMs));
  }

  unauthorisedPipelining(): Verdict {
    return this.wireTest(pipeliningVerdict());
  }

  /**
   * Step 3: the guide runs no filter on HELO/EHLO; the listener's optional HELO checks judge the name
   * here (`ourAddress`: the address the client connected to) and refuse at RCPT TO.
   */
  helo(name: string, ourAddress?: string): Verdict {
    this.trace.push(traceEntry(STEPS.helo, `answered normally (${name})`));
    const checks = this.listener.config.heloChecks;
    if (this.connectionFiltering && this.acceptedBy === undefined && (checks.syntax || checks.notOurs)) {
      this.heloNameChecked = true;
      this.heloName = checkHeloName(name, checks, this.rules.rules.hostname, [...this.rules.listenAddresses, ...(ourAddress ? [ourAddress] : [])], this.trace);
    }
    return this.judged({ kind: 'helo', name }, verdict('accept', 250, '2.0.0', `${this.rules.rules.hostname} Hello ${name}`, STEPS.helo));
  }

  /** Steps 5-7: accept list, deny list, blocked senders on the envelope sender. */
  mailFrom(address: string): Verdict {
    return this.judged({ kind: 'mail', address }, this.mailVerdict(address));
  }

  private mailVerdict(address: string): Verdict {
    this.resetTransaction();
    this.sender = address;
    if (this.connectionFiltering) {
      const decided = checkAcceptDeny(this.rules, this.clientIp, this.acceptedBy, this.trace);
      if (decided?.action === 'drop') return this.decide(decided);
      // An accept-list hit ends no transaction, but it is the decision that skips steps 6 and 9: logged and counted.
      if (decided) this.observe(decided);
    } else {
      this.trace.push(traceEntry(STEPS.acceptList, 'skipped: connection filtering is off on this listener'));
      this.trace.push(traceEntry(STEPS.denyList, 'skipped: connection filtering is off on this listener'));
    }
    if (this.listener.config.filters.sender) {
      const blocked = checkSender(this.rules, address, STEPS.envelopeSender, this.trace);
      if (blocked?.action === 'archive') this.archiveVerdict = blocked;
      if (blocked) return this.decide(blocked);
    } else {
      this.trace.push(traceEntry(STEPS.envelopeSender, 'skipped: sender filtering is off on this listener'));
    }
    return this.decide(verdict('accept', 250, '2.1.0', `<${address}>...Sender OK`, STEPS.envelopeSender));
  }

  /**
   * The recipient as RCPT TO judges it and the back end should be offered it (see recipientAddress).
   * The last one is remembered: the edge asks for the form it relays, then rcptTo asks again with it.
   */
  recipient(address: string): string {
    const last = this.lastRecipient;
    if (last.address === address) return last.form;
    const form = recipientAddress(this.rules, address);
    this.lastRecipient = { address, form };
    return form;
  }

  /**
   * Relay protection, then steps 9-12 for one recipient (in the form `recipient` gives), then harvest
   * protection. A promise only while something is waited for (see recipientVerdict).
   */
  rcptTo(address: string): Verdict | Promise<Verdict> {
    const found = this.recipientVerdict(this.recipient(address));
    return found instanceof Promise ? found.then((v) => this.recipientDecided(address, v)) : this.recipientDecided(address, found);
  }

  private recipientDecided(address: string, found: Verdict): Verdict {
    return this.judged({ kind: 'rcpt', address }, this.decide(this.harvest.apply(found, this.trace)));
  }

  /** Step 15: the blocked-senders filter on the message's header `From:` address. */
  headerFrom(address: string | undefined): Verdict {
    return this.judged(address === undefined ? { kind: 'data' } : { kind: 'data', headerFrom: address }, this.headerVerdict(address));
  }

  private headerVerdict(address: string | undefined): Verdict {
    if (!this.listener.config.filters.sender) {
      this.trace.push(traceEntry(STEPS.headerFrom, 'skipped: sender filtering is off on this listener'));
    } else if (address === undefined) {
      this.trace.push(traceEntry(STEPS.headerFrom, 'no From: address in the header'));
    } else {
      const blocked = checkSender(this.rules, address, STEPS.headerFrom, this.trace);
      if (blocked?.action === 'archive' && !this.archiveVerdict) this.archiveVerdict = blocked;
      if (blocked && blocked.action !== 'archive') return this.decide(blocked);
    }
    if (this.archiveVerdict) return this.decide({ ...this.archiveVerdict, step: STEPS.headerFrom.step, code: 250, enhanced: '2.6.0', text: 'Message accepted' });
    return this.decide(verdict('relay', 0, '', 'relayed to the back end', STEPS.headerFrom));
  }

  /** Whether this listener authenticates senders: SPF at MAIL FROM, the whole message before relaying it. */
  get authenticatesSenders(): boolean {
    return this.listener.config.senderAuth !== undefined;
  }

  /** The authserv-id of the Authentication-Results the edge writes (and strips when forged). */
  get authservId(): string {
    return this.rules.rules.senderAuth.authservId ?? this.rules.rules.hostname;
  }

  /**
   * Step 7.2, for a sender that passed step 7: SPF of MAIL FROM (of HELO for `<>`). Undefined, with no
   * promise, where the listener does not authenticate: every accepted sender asks.
   */
  spf(address: string, helo: string): Promise<Verdict | undefined> | undefined {
    const settings = this.listener.config.senderAuth;
    return settings && this.spfChecked(settings, address, helo);
  }

  private async spfChecked(settings: ListenerSenderAuth, address: string, helo: string): Promise<Verdict | undefined> {
    this.spfCheck = await this.senderAuthPort().spf({ sender: address, ip: this.clientIp, helo });
    return this.observedAuth(judgeSpf(settings, this.rules.senderAuthExempt, this.clientIp, this.spfCheck, address, this.trace));
  }

  /** Steps 15.1-15.3 on the whole message, after step 15 chose to relay it. */
  async authenticateMessage(message: Readable, sender: string, helo: string): Promise<AuthenticatedVerdict> {
    const settings = this.listener.config.senderAuth;
    if (!settings) throw new Error(`listener '${this.listener.config.name}' does not authenticate senders`);
    const auth = await this.senderAuthPort().message({ message, sender, ip: this.clientIp, helo, spf: this.spfCheck });
    const judged = judgeMessage(settings, this.rules.senderAuthExempt, this.clientIp, auth, this.trace);
    const entries = [...auth.dkim.map((d) => d.info), ...(this.spfCheck ? [this.spfCheck.info] : []), auth.arc.info, ...(auth.dmarc ? [auth.dmarc.info] : [])];
    const quarantine = judged.quarantine === undefined ? '' : `X-Portcullis-Quarantine: ${judged.quarantine}\r\n`;
    return { verdict: this.observedAuth(judged), headers: quarantine + authenticationResults(this.authservId, entries) };
  }

  /** Forget the current transaction (RSET, a new MAIL FROM, or the end of a message). */
  resetTransaction(): void {
    this.archiveVerdict = undefined;
    this.spfCheck = undefined;
  }

  /**
   * Drops the events and trace judged so far, for a session whose record nobody keeps: otherwise a
   * connection carrying many messages holds every one's trace until it closes, and the garbage
   * collector copies them from generation to generation.
   */
  forgetJudged(): void {
    // New arrays: truncating the old ones (length = 0) cost V8 more than making them.
    this.traced = [];
    this.judgedEvents = [];
  }

  private senderAuthPort(): SenderAuth {
    if (!this.deps.senderAuth) throw new Error('senderAuth is configured but no SenderAuth port was given to the policy');
    return this.deps.senderAuth;
  }

  /** A sender-authentication verdict, with the report-only results that came with it passed to the observer. */
  private observedAuth({ verdict: v, observed }: { verdict: Verdict; observed: Verdict[] }): Verdict {
    for (const o of observed) this.observe(o);
    return v;
  }

  /**
   * The recipient's verdict before harvest protection. A promise only while something is waited for
   * (the HELO checks' reverse DNS, step 9's lookups until they are in, the rate limits and
   * greylisting), else the verdict itself: a reused connection's recipients usually wait for nothing,
   * and each async frame and await cost a promise and a turn of the microtask queue per recipient.
   * Each stage runs after the same waits, and traces in the same order, as one async function did.
   */
  private recipientVerdict(address: string): Verdict | Promise<Verdict> {
    if (this.fcrdns && !this.heloName) return this.heloChecksVerdict().then((helo) => helo ?? this.relayAndLists(address));
    return this.heloChecksOutcome(this.heloName) ?? this.relayAndLists(address);
  }

  /** Relay protection, then steps 9-12, step 9 waiting for its lookups until they are in. */
  private relayAndLists(address: string): Verdict | Promise<Verdict> {
    const relay = checkRelay(this.rules, this.listener, this.clientIp, address, this.trace);
    if (relay.verdict) return relay.verdict;
    if (!this.connectionFiltering || this.acceptedBy !== undefined) return this.lists(address, relay.local);
    const lookedUp = this.dnsblDone !== undefined || this.dnsbl !== undefined;
    if (this.dnsblDone) return this.lists(address, relay.local, this.dnsblDone, lookedUp);
    const outcome = this.dnsblOutcome();
    if (!(outcome instanceof Promise)) return this.lists(address, relay.local, outcome, lookedUp);
    return outcome.then((settled) => this.lists(address, relay.local, settled, lookedUp));
  }

  /** Steps 9-12 given step 9's `outcome` (none when connection filtering is off or the client is on the accept list), then the limits. */
  private lists(address: string, local: boolean, outcome?: DnsblOutcome, lookedUp = false): Verdict | Promise<Verdict> {
    let listed: Verdict | undefined;
    if (!this.connectionFiltering) {
      this.trace.push(traceEntry(STEPS.dnsbl, 'skipped: connection filtering is off on this listener'));
      this.trace.push(traceEntry(STEPS.exceptions, 'skipped: connection filtering is off on this listener'));
    } else {
      if (!outcome) {
        this.trace.push(traceEntry(STEPS.dnsbl, `skipped: client is on the accept list (${this.acceptedBy})`));
      } else {
        listed = outcome.decisive;
        if (listed) this.trace.push(traceEntry(outcome.check, `session verdict: ${listed.code} ${listed.enhanced} (${listed.rule})`, listed.rule));
        else if (outcome.allowed) this.trace.push(traceEntry(outcome.allowed, `session verdict: allowlisted${outcome.allowed.rule ? ` (${outcome.allowed.rule})` : ''}`, outcome.allowed.rule));
        else if (lookedUp) this.trace.push(traceEntry(outcome.check, outcome.score ? 'session verdict: score below threshold' : 'session verdict: no enforced rule matches'));
      }
      const exception = exceptionEntry(this.rules, address, this.trace);
      if (exception !== undefined) {
        return verdict('accept', 250, '2.1.5', `<${address}>... Recipient OK`, STEPS.exceptions, exception);
      }
    }
    if (listed) return listed;

    if (this.listener.config.filters.recipient) {
      const blocked = checkBlockedRecipient(this.rules, address, this.trace);
      if (blocked) return blocked;
      const unknown = checkDirectory(this.rules.rules, this.deps.directory, address, local, this.trace);
      if (unknown) return unknown;
    } else {
      this.trace.push(traceEntry(STEPS.blockedRecipients, 'skipped: recipient filtering is off on this listener'));
      this.trace.push(traceEntry(STEPS.directory, 'skipped: recipient filtering is off on this listener'));
    }
    if (!this.limits.rateLimits && !this.limits.greylisting) return recipientAccepted(address);
    return this.recipientLimits(address, local).then((limited) => limited ?? recipientAccepted(address));
  }

  /** Steps 12.1 and 12.2 for a recipient the filters accept: the recipient rate limits, then greylisting. */
  private async recipientLimits(address: string, local: boolean): Promise<Verdict | undefined> {
    const limited = await this.limits.rateLimits?.recipient(this.clientIp, this.sender, this.trace);
    if (limited) return limited;
    const skip = !local ? 'the client may relay' : this.greylistingSkippedBecause();
    return this.limits.greylisting?.check(this.clientIp, this.sender, address, skip, this.trace);
  }

  /**
   * Why this session is not greylisted, if it is not: a client on the accept list or a DNS allowlist
   * (an allow rule, or a score at or below allowThreshold) has already been judged good.
   */
  private greylistingSkippedBecause(): string | undefined {
    if (!this.allowlisted) return undefined;
    return this.acceptedBy !== undefined ? `client is on the accept list (${this.acceptedBy})` : 'client is on a DNS allowlist (step 9)';
  }

  /** The HELO checks' session verdict, once forward-confirmed reverse DNS has answered. */
  private async heloChecksVerdict(): Promise<Verdict | undefined> {
    let refused = this.heloName;
    if (!refused && this.fcrdns) {
      const fcrdns = await this.fcrdns;
      if (!this.fcrdnsTraced) this.trace.push(...fcrdns.trace);
      this.fcrdnsTraced = true;
      refused = fcrdns.verdict;
    }
    return this.heloChecksOutcome(refused);
  }

  /** The HELO checks' session verdict given what refused the client, if anything; a pass is decided (logged and counted) once. */
  private heloChecksOutcome(refused: Verdict | undefined): Verdict | undefined {
    if (refused) {
      this.trace.push(traceEntry(STEPS.heloChecks, `session verdict: ${refused.code} ${refused.enhanced} (${refused.rule ?? ''})`, refused.rule));
    } else if (!this.heloPassed && (this.heloNameChecked || this.fcrdns)) {
      this.heloPassed = true;
      this.decide(verdict('continue', 0, '', 'HELO checks passed', STEPS.heloChecks));
    }
    return refused;
  }

  private wireTest(v: Verdict): Verdict {
    this.trace.push(traceEntry(v, v.code > 0 ? `${v.code} ${v.enhanced} ${v.text}` : v.text));
    return this.decide(v);
  }

  private startLookups(): void {
    const zones = this.rules.dnsblZones;
    if (zones.length === 0) return;
    const answers = (this.answers = new Map());
    for (const zone of zones) answers.set(zone, this.deps.dnsbl.lookup(zone, this.clientIp));
  }

  /**
   * The DNSBL verdict is per session: looked up once, applied to every recipient. A rule set with no
   * DNSBL rule and no scoring has nothing to wait for, nor have first-match rules whose answers were
   * all cached: settled in this turn, with no promise.
   */
  private dnsblOutcome(): DnsblOutcome | Promise<DnsblOutcome> {
    if (this.dnsbl) return this.dnsbl;
    const { dnsblRules: rules, dnsblScoring: scoring } = this.rules;
    if (rules.length === 0 && !scoring) return this.step9Settled(noDnsblRules());
    const outcome = evaluateStep9({ rules, scoring }, this.answers ?? NO_ANSWERS, this.deps.health, this.clientIp);
    if (!(outcome instanceof Promise)) return this.step9Settled(outcome);
    this.dnsbl = outcome.then((settled) => this.step9Settled(settled));
    return this.dnsbl;
  }

  private step9Settled(outcome: DnsblOutcome): DnsblOutcome {
    this.trace.push(...outcome.trace);
    for (const v of outcome.reportOnly) this.observe(v);
    if (outcome.score) this.deps.onDnsblScore?.(outcome.score);
    if (outcome.allowed) {
      this.dnsAllowlisted = true;
      // Like the accept list's hit: it writes no reply, but it is a decision, logged and counted once.
      this.observe(outcome.allowed);
    }
    this.dnsblDone = outcome;
    return outcome;
  }

  /**
   * `event` is the caller's own fresh literal, completed in place: copying it (`{ ...event, ... }`)
   * cost more than any check of a session with no rules.
   */
  private judged(event: SessionEvent, v: Verdict): Verdict {
    const judged = event as JudgedEvent;
    judged.verdict = v;
    judged.traceEnd = this.trace.length;
    this.events.push(judged);
    return v;
  }

  private decide(v: Verdict): Verdict {
    this.observe(v);
    return v;
  }
}

/** The answers of a session that looked nothing up; read, never written. */
const NO_ANSWERS: ReadonlyMap<string, DnsblAnswerOrPromise> = new Map();

/** Step 12's pass: the recipient is accepted. */
function recipientAccepted(address: string): Verdict {
  return verdict('accept', 250, '2.1.5', `<${address}>... Recipient OK`, STEPS.recipientAccepted);
}
