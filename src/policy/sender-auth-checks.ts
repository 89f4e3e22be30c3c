/**
 * Steps 7.2 (SPF) and 15.1-15.3 (DKIM, DMARC, ARC): what a listener's `senderAuth` settings make of
 * the results the SenderAuth port found. Enforcement is each optional; an exempt client or domain
 * is stamped and counted but never refused; report-only enforcement is logged with the reply it
 * would have given, as report-only DNSBL rules are.
 */
import type { ListenerSenderAuth } from '../config/schema.js';
import type { IpList } from '../net/ip-list.js';
import type { MessageAuth, SpfCheck } from '../auth/sender-auth.js';
import { STEPS, type StepCheck } from './steps.js';
import { traceEntry, verdict, type AuthLabel, type TraceEntry, type Verdict } from './verdict.js';

/** Who is exempt from enforcement (`senderAuth.exempt`): forwarders and lists by network, partners by domain. */
export interface AuthExemptions {
  clients: IpList;
  domains: readonly string[];
}

/** A step's result: the verdict it comes to, and every decision to observe (the report-only one included). */
export interface AuthJudgement {
  verdict: Verdict;
  observed: Verdict[];
}

/** The domain, or a parent of it, on the exempt list. */
function exemptDomain(exempt: AuthExemptions, domain: string | undefined): string | undefined {
  if (!domain) return undefined;
  const d = domain.toLowerCase().replace(/\.$/, '');
  return exempt.domains.find((e) => d === e.toLowerCase() || d.endsWith(`.${e.toLowerCase()}`));
}

/** Why enforcement does not apply to this client and domain, if it does not. */
function exemption(exempt: AuthExemptions, clientIp: string, domain: string | undefined): string | undefined {
  const client = exempt.clients.match(clientIp);
  if (client !== undefined) return `client on senderAuth.exempt.clients (${client})`;
  const d = exemptDomain(exempt, domain);
  return d === undefined ? undefined : `domain on senderAuth.exempt.domains (${d})`;
}

/** Applies enforcement (a reply the step would give, or none) under the exemptions and report-only mode. */
function enforce(
  settings: ListenerSenderAuth,
  step: StepCheck,
  label: Omit<AuthLabel, 'action'>,
  refusal: Verdict | undefined,
  exempt: string | undefined,
  found: string,
  trace: TraceEntry[],
  pass: Verdict,
): AuthJudgement {
  const labelled = (v: Verdict, action: AuthLabel['action']): Verdict => ({ ...v, auth: { ...label, action } });
  if (!refusal) {
    trace.push(traceEntry(step, found));
    const v = labelled(pass, 'accept');
    return { verdict: v, observed: [v] };
  }
  if (exempt !== undefined) {
    trace.push(traceEntry(step, `${found}; not enforced: ${exempt}`));
    const v = labelled(pass, 'exempt');
    return { verdict: v, observed: [v] };
  }
  if (settings.reportOnly) {
    trace.push(traceEntry(step, `${found}; report only, would answer ${refusal.code} ${refusal.enhanced}`));
    const report = labelled({ ...refusal, reportOnly: true }, 'report');
    const v = labelled(pass, 'accept');
    return { verdict: v, observed: [report, v] };
  }
  trace.push(traceEntry(step, found));
  const v = labelled(refusal, refusal.action === 'tempfail' ? 'tempfail' : 'reject');
  return { verdict: v, observed: [v] };
}

/** Step 7.2: SPF fail is `550 5.7.23` and a temporary error `451 4.7.24` (RFC 7372), when enforced. */
export function judgeSpf(settings: ListenerSenderAuth, exempt: AuthExemptions, clientIp: string, spf: SpfCheck, address: string, trace: TraceEntry[]): AuthJudgement {
  let refusal: Verdict | undefined;
  if (settings.enforceSpf && spf.result === 'fail') {
    refusal = verdict('reject', 550, '5.7.23', `SPF validation failed: ${spf.domain} does not designate ${clientIp} as permitted sender`, STEPS.spf);
  } else if (settings.enforceSpf && spf.result === 'temperror' && settings.onTempError === 'tempfail') {
    refusal = verdict('tempfail', 451, '4.7.24', `SPF validation error for ${spf.domain}, try again later`, STEPS.spf);
  }
  const found = `${spf.result} (${spf.identity === 'helo' ? 'HELO' : 'MAIL FROM'} ${spf.domain})`;
  const pass = verdict('accept', 250, '2.1.0', `<${address}>...Sender OK`, STEPS.spf);
  return enforce(settings, STEPS.spf, { mechanism: 'spf', result: spf.result }, refusal, exemption(exempt, clientIp, spf.domain), found, trace, pass);
}

/** What steps 15.1-15.3 came to for one message. */
export interface MessageJudgement {
  /** The refusal, or the relay verdict of the last step. */
  verdict: Verdict;
  observed: Verdict[];
  /** DMARC `p=quarantine` enforced: the value of the header the back end acts on. */
  quarantine?: string;
}

/**
 * Steps 15.1-15.3. DKIM and ARC are stamped, never enforced on their own (DMARC is what says what a
 * failure means); DMARC `p=reject` is `550 5.7.1`, `p=quarantine` a header, a temporary error `451 4.7.1`.
 */
export function judgeMessage(settings: ListenerSenderAuth, exempt: AuthExemptions, clientIp: string, auth: MessageAuth, trace: TraceEntry[]): MessageJudgement {
  const observed: Verdict[] = [];
  const relay = (step: StepCheck): Verdict => verdict('relay', 0, '', 'relayed to the back end', step);
  for (const d of auth.dkim) {
    trace.push(traceEntry(STEPS.dkim, d.domain ? `${d.result} (d=${d.domain})` : d.result));
    observed.push({ ...relay(STEPS.dkim), auth: { mechanism: 'dkim', result: d.result, action: 'accept' } });
  }
  let final: Verdict = relay(STEPS.dmarc);
  let quarantine: string | undefined;
  const dmarc = auth.dmarc;
  if (!dmarc) {
    trace.push(traceEntry(STEPS.dmarc, 'none (no single From: domain)'));
    observed.push({ ...final, auth: { mechanism: 'dmarc', result: 'none', action: 'accept' } });
  } else {
    let refusal: Verdict | undefined;
    const failed = dmarc.result === 'fail';
    if (settings.enforceDmarc && failed && dmarc.policy === 'reject') {
      refusal = verdict('reject', 550, '5.7.1', `Message rejected: DMARC policy of ${dmarc.domain}`, STEPS.dmarc);
    } else if (settings.enforceDmarc && dmarc.result === 'temperror' && settings.onTempError === 'tempfail') {
      refusal = verdict('tempfail', 451, '4.7.1', `DMARC policy of ${dmarc.domain} could not be checked, try again later`, STEPS.dmarc);
    }
    const found = `${dmarc.result} (header From: ${dmarc.domain}${dmarc.policy ? `, p=${dmarc.policy}` : ''})`;
    const why = exemption(exempt, clientIp, dmarc.domain);
    const judged = enforce(settings, STEPS.dmarc, { mechanism: 'dmarc', result: dmarc.result }, refusal, why, found, trace, final);
    final = judged.verdict;
    if (settings.enforceDmarc && failed && dmarc.policy === 'quarantine' && why === undefined) {
      // The back end files the message by this header; report-only mode only says it would have.
      if (!settings.reportOnly) quarantine = `dmarc; domain=${dmarc.domain}; policy=quarantine`;
      trace.push(traceEntry(STEPS.dmarc, settings.reportOnly ? 'report only, would mark the message for quarantine' : 'marked for quarantine (X-Portcullis-Quarantine)'));
      final = { ...final, auth: { mechanism: 'dmarc', result: dmarc.result, action: settings.reportOnly ? 'report' : 'quarantine' } };
      judged.observed[judged.observed.length - 1] = final;
    }
    observed.push(...judged.observed);
  }
  trace.push(traceEntry(STEPS.arc, auth.arc.result));
  const arc = { ...relay(STEPS.arc), auth: { mechanism: 'arc', result: auth.arc.result, action: 'accept' } } satisfies Verdict;
  observed.push(arc);
  if (final.action !== 'relay') return { verdict: final, observed };
  return quarantine === undefined ? { verdict: arc, observed } : { verdict: arc, observed, quarantine };
}
