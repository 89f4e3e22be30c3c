/**
 * One recorded session run again through a PolicyEngine: the recorded events, in order, with the
 * listener's own order of commands (no RCPT without a MAIL FROM the filters let through, no DATA
 * without an accepted recipient, nothing after a drop), and the recorded DNS answers unless other
 * ports are given. The decisions are the engine's; this module only feeds it.
 */
import type { DecisionRecord } from '../../policy/decision-record.js';
import type { PolicyEngine } from '../../policy/policy-engine.js';
import { ReplayingPorts } from '../../policy/recorded-ports.js';
import type { SessionDeps } from '../../policy/session-policy.js';
import type { Verdict } from '../../policy/verdict.js';

/** The engine's verdict for each recorded event; undefined where the session never got that far. */
export interface Replayed {
  verdicts: (Verdict | undefined)[];
  /** DNSBL zones the engine asked that the record has no answer for. */
  missing: string[];
}

/** Replays `record` through `engine`, with the record's DNS answers unless `deps` is given (live DNS). */
export async function replaySession(engine: PolicyEngine, record: DecisionRecord, deps?: SessionDeps): Promise<Replayed> {
  const ports = deps ? undefined : new ReplayingPorts(record.dns, record.zones);
  const policy = engine.session(record.listener, record.client, undefined, deps ?? { ...engine.deps, dnsbl: ports!.dnsbl, health: ports!.health });
  const verdicts: (Verdict | undefined)[] = [];
  let open = true;
  let inTransaction = false;
  let accepted = 0;
  for (const event of record.events) {
    let v: Verdict | undefined;
    if (!open) {
      v = undefined;
    } else if (event.kind === 'connect') {
      v = policy.connect();
      open = v.action !== 'drop' && v.action !== 'reject';
    } else if (event.kind === 'helo') {
      v = policy.helo(event.name);
    } else if (event.kind === 'mail') {
      v = policy.mailFrom(event.address);
      inTransaction = v.action !== 'reject' && v.action !== 'drop';
      accepted = 0;
    } else if (event.kind === 'rcpt') {
      v = inTransaction ? await policy.rcptTo(event.address) : undefined;
      if (v?.action === 'accept') accepted += 1;
    } else {
      v = inTransaction && accepted > 0 ? policy.headerFrom(event.headerFrom) : undefined;
      inTransaction = false;
      policy.resetTransaction();
    }
    if (v?.action === 'drop') open = false;
    verdicts.push(v);
  }
  return { verdicts, missing: [...(ports?.missing ?? [])] };
}

/** What became of one recipient: delivered on, or refused, and the verdict that decided it. */
export interface RecipientOutcome {
  /** Index of its RCPT TO in the record's events. */
  event: number;
  address: string;
  accepted: boolean;
  /** The verdict that refused it (RCPT TO's own, or an earlier stage's, or DATA's); undefined when accepted. */
  decidedBy?: Verdict;
}

const REFUSED = new Set(['reject', 'drop', 'tempfail']);

/**
 * Each recipient's outcome from the verdicts of a session's events: accepted when its RCPT TO was
 * and its message (if the record has one) was relayed; an archived message is not delivered.
 */
export function recipientOutcomes(record: DecisionRecord, verdicts: readonly (Verdict | undefined)[]): RecipientOutcome[] {
  const out: RecipientOutcome[] = [];
  // The verdict that closed the session (a refused connection, a drop), and the one that refused the current MAIL FROM.
  let closedBy: Verdict | undefined;
  let mailRefusal: Verdict | undefined;
  let pending: RecipientOutcome[] = [];
  const settle = (data: Verdict | undefined): void => {
    for (const r of pending) {
      if (r.accepted && data && data.action !== 'relay') {
        r.accepted = false;
        r.decidedBy = data;
      }
    }
    pending = [];
  };
  record.events.forEach((event, i) => {
    const v = verdicts[i];
    if (event.kind === 'mail') {
      settle(undefined);
      mailRefusal = v && REFUSED.has(v.action) ? v : undefined;
    } else if (event.kind === 'rcpt') {
      const accepted = v?.action === 'accept';
      const r: RecipientOutcome = { event: i, address: event.address, accepted };
      const by = accepted ? undefined : (v ?? closedBy ?? mailRefusal);
      if (by) r.decidedBy = by;
      out.push(r);
      pending.push(r);
    } else if (event.kind === 'data') {
      settle(v);
    }
    if (v && (v.action === 'drop' || (event.kind === 'connect' && v.action === 'reject'))) closedBy ??= v;
  });
  settle(undefined);
  return out;
}
