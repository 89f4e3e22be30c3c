import type { Readable } from 'node:stream';
import { authenticationResults } from '../auth/auth-results-header.js';
import type { SenderAuth, SpfCheck } from '../auth/sender-auth.js';
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
import { judgeMessage, judgeSpf } from './sender-auth-checks.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

/** What a session needs from the outside world. */
export interface SessionDeps {
  dnsbl: DnsblLookup;
  health: ZoneHealth;
  directory: Directory;
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
  readonly trace: TraceEntry[] = [];
  private readonly connectionFiltering: boolean;
  private acceptedBy: string | undefined;
  private readonly answers = new Map<string, Promise<DnsblAnswer>>();
  private dnsbl: Promise<DnsblOutcome> | undefined;
  private readonly harvest: HarvestGuard;
  private archiveVerdict: Verdict | undefined;
  private spfCheck: SpfCheck | undefined;

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
    return this.decide(v);
  }

  /** Step 3: no filter runs on HELO/EHLO. */
  helo(name: string): Verdict {
    this.trace.push(traceEntry(STEPS.helo, `answered normally (${name})`));
    return verdict('accept', 250, '2.0.0', `${this.rules.rules.hostname} Hello ${name}`, STEPS.helo);
  }

  /** Steps 5-7: accept list, deny list, blocked senders on the envelope sender. */
  mailFrom(address: string): Verdict {
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
    return this.decide(this.harvest.apply(await this.recipientVerdict(this.recipient(address)), this.trace));
  }

  /** Step 15: the blocked-senders filter on the message's header `From:` address. */
  headerFrom(address: string | undefined): Verdict {
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

  /** Step 7.2, for a sender that passed step 7: SPF of MAIL FROM (of HELO for `<>`). Undefined where the listener does not authenticate. */
  async spf(address: string, helo: string): Promise<Verdict | undefined> {
    const settings = this.listener.config.senderAuth;
    if (!settings) return undefined;
    this.spfCheck = await this.senderAuthPort().spf({ sender: address, ip: this.clientIp, helo });
    return this.judged(judgeSpf(settings, this.rules.senderAuthExempt, this.clientIp, this.spfCheck, address, this.trace));
  }

  /** Steps 15.1-15.3 on the whole message, after step 15 chose to relay it. */
  async authenticateMessage(message: Readable, sender: string, helo: string): Promise<AuthenticatedVerdict> {
    const settings = this.listener.config.senderAuth;
    if (!settings) throw new Error(`listener '${this.listener.config.name}' does not authenticate senders`);
    const auth = await this.senderAuthPort().message({ message, sender, ip: this.clientIp, helo, spf: this.spfCheck });
    const judged = judgeMessage(settings, this.rules.senderAuthExempt, this.clientIp, auth, this.trace);
    const entries = [...auth.dkim.map((d) => d.info), ...(this.spfCheck ? [this.spfCheck.info] : []), auth.arc.info, ...(auth.dmarc ? [auth.dmarc.info] : [])];
    const quarantine = judged.quarantine === undefined ? '' : `X-Portcullis-Quarantine: ${judged.quarantine}\r\n`;
    return { verdict: this.judged(judged), headers: quarantine + authenticationResults(this.authservId, entries) };
  }

  /** Forget the current transaction (RSET, a new MAIL FROM, or the end of a message). */
  resetTransaction(): void {
    this.archiveVerdict = undefined;
    this.spfCheck = undefined;
  }

  private senderAuthPort(): SenderAuth {
    if (!this.deps.senderAuth) throw new Error('senderAuth is configured but no SenderAuth port was given to the policy');
    return this.deps.senderAuth;
  }

  private judged({ verdict: v, observed }: { verdict: Verdict; observed: Verdict[] }): Verdict {
    for (const o of observed) this.observe(o);
    return v;
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

  private decide(v: Verdict): Verdict {
    this.observe(v);
    return v;
  }
}
