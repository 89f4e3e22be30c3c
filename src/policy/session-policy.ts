import { normalizeIp } from '../net/ip.js';
import { acceptListEntry, checkAcceptDeny } from './accept-deny.js';
import type { CompiledListener, CompiledRules } from './compiled-rules.js';
import { checkDirectory } from './directory.js';
import { evaluateDnsbl, type DnsblOutcome } from './dnsbl/evaluate.js';
import { exceptionEntry } from './exceptions.js';
import { HarvestGuard } from './harvest.js';
import type { Directory } from '../directory/directory-model.js';
import type { DnsblAnswer } from '../dns/dnsbl-answer.js';
import type { DnsblLookup } from '../dns/dnsbl-lookup.js';
import type { ZoneHealth } from '../dns/zone-health.js';
import { checkIpRestrictions } from './ip-restrictions.js';
import { recipientAddress } from './recipient-address.js';
import { checkBlockedRecipient } from './recipient-filter.js';
import { checkRelay } from './relay-protection.js';
import { checkSender } from './sender-filter.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';
import type { JudgedEvent, SessionEvent } from './session-events.js';

/** What a session needs from the outside world. */
export interface SessionDeps {
  dnsbl: DnsblLookup;
  health: ZoneHealth;
  directory: Directory;
}

/** Called with every decision the session makes, report-only DNSBL matches included. */
export type DecisionObserver = (v: Verdict) => void;

/**
 * The filtering order for one connection, as a small state machine driven by SMTP events:
 * connect (step 2), MAIL FROM (5-7), each RCPT TO (relay, 9-12, harvest), the header From: (15).
 */
export class SessionPolicy {
  readonly clientIp: string;
  readonly trace: TraceEntry[] = [];
  /** Every event judged, with its verdict: the session's inputs, for the decision record. */
  readonly events: JudgedEvent[] = [];
  private readonly connectionFiltering: boolean;
  private acceptedBy: string | undefined;
  private readonly answers = new Map<string, Promise<DnsblAnswer>>();
  private dnsbl: Promise<DnsblOutcome> | undefined;
  private readonly harvest: HarvestGuard;
  private archiveVerdict: Verdict | undefined;

  constructor(
    private readonly rules: CompiledRules,
    private readonly listener: CompiledListener,
    clientIp: string,
    private readonly deps: SessionDeps,
    private readonly observe: DecisionObserver = () => {},
  ) {
    this.clientIp = normalizeIp(clientIp);
    this.connectionFiltering = listener.config.filters.connection;
    this.harvest = new HarvestGuard(rules.rules.harvest);
  }

  /** The verdict that sends the current transaction to Badmail, if a step chose `archive`. */
  get archive(): Verdict | undefined {
    return this.archiveVerdict;
  }

  /** Step 2, and the start of the session's DNSBL lookups so their answers are ready by RCPT TO. */
  connect(): Verdict {
    const v = checkIpRestrictions(this.listener, this.clientIp, this.rules.rules.hostname, this.trace);
    if (v.action === 'accept' && this.connectionFiltering) {
      this.acceptedBy = acceptListEntry(this.rules, this.clientIp);
      // A client on the deny list is dropped at MAIL FROM: its lookups would only spend the lists' quota.
      if (this.acceptedBy === undefined && this.rules.denyList.match(this.clientIp) === undefined) this.startLookups();
    }
    return this.judged({ kind: 'connect' }, this.decide(v));
  }

  /** Step 3: no filter runs on HELO/EHLO. */
  helo(name: string): Verdict {
    this.trace.push(traceEntry(STEPS.helo, `answered normally (${name})`));
    return this.judged({ kind: 'helo', name }, verdict('accept', 250, '2.0.0', `${this.rules.rules.hostname} Hello ${name}`, STEPS.helo));
  }

  /** Steps 5-7: accept list, deny list, blocked senders on the envelope sender. */
  mailFrom(address: string): Verdict {
    return this.judged({ kind: 'mail', address }, this.mailVerdict(address));
  }

  private mailVerdict(address: string): Verdict {
    this.resetTransaction();
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

  /** The recipient as RCPT TO judges it and the back end should be offered it (see recipientAddress). */
  recipient(address: string): string {
    return recipientAddress(this.rules, address);
  }

  /** Relay protection, then steps 9-12 for one recipient (in the form `recipient` gives), then harvest protection. */
  async rcptTo(address: string): Promise<Verdict> {
    const v = this.decide(this.harvest.apply(await this.recipientVerdict(this.recipient(address)), this.trace));
    return this.judged({ kind: 'rcpt', address }, v);
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

  /** Forget the current transaction (RSET, a new MAIL FROM, or the end of a message). */
  resetTransaction(): void {
    this.archiveVerdict = undefined;
  }

  private async recipientVerdict(address: string): Promise<Verdict> {
    const relay = checkRelay(this.rules, this.listener, this.clientIp, address, this.trace);
    if (relay.verdict) return relay.verdict;

    let listed: Verdict | undefined;
    if (!this.connectionFiltering) {
      this.trace.push(traceEntry(STEPS.dnsbl, 'skipped: connection filtering is off on this listener'));
      this.trace.push(traceEntry(STEPS.exceptions, 'skipped: connection filtering is off on this listener'));
    } else {
      if (this.acceptedBy !== undefined) {
        this.trace.push(traceEntry(STEPS.dnsbl, `skipped: client is on the accept list (${this.acceptedBy})`));
      } else {
        const lookedUp = this.dnsbl !== undefined;
        listed = (await this.dnsblOutcome()).decisive;
        if (listed) this.trace.push(traceEntry(STEPS.dnsbl, `session verdict: ${listed.code} ${listed.enhanced} (${listed.rule})`, listed.rule));
        else if (lookedUp) this.trace.push(traceEntry(STEPS.dnsbl, 'session verdict: no enforced rule matches'));
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
      const unknown = checkDirectory(this.rules.rules, this.deps.directory, address, relay.local, this.trace);
      if (unknown) return unknown;
    } else {
      this.trace.push(traceEntry(STEPS.blockedRecipients, 'skipped: recipient filtering is off on this listener'));
      this.trace.push(traceEntry(STEPS.directory, 'skipped: recipient filtering is off on this listener'));
    }
    return verdict('accept', 250, '2.1.5', `<${address}>... Recipient OK`, STEPS.recipientAccepted);
  }

  private startLookups(): void {
    for (const zone of this.rules.dnsblZones) {
      this.answers.set(zone, this.deps.dnsbl.lookup(zone, this.clientIp));
    }
  }

  /** The DNSBL verdict is per session: looked up once, applied to every recipient. */
  private dnsblOutcome(): Promise<DnsblOutcome> {
    this.dnsbl ??= evaluateDnsbl(this.rules.dnsblRules, this.answers, this.deps.health, this.clientIp).then((outcome) => {
      this.trace.push(...outcome.trace);
      for (const v of outcome.reportOnly) this.observe(v);
      return outcome;
    });
    return this.dnsbl;
  }

  private judged(event: SessionEvent, v: Verdict): Verdict {
    this.events.push({ ...event, verdict: v, traceEnd: this.trace.length });
    return v;
  }

  private decide(v: Verdict): Verdict {
    this.observe(v);
    return v;
  }
}
