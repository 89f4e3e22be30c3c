/**
 * The smallest change of the rule set that would have flipped each refusal of a recorded session:
 * for the step and rule that refused, the entry to remove or the exception to add, each tried by
 * replaying the record through the engine with the changed rules and kept only if it flips the
 * refusal. Nothing here judges mail; it proposes edits and the engine judges them.
 */
import type { Rules } from '../../config/schema.js';
import { DirectoryModel } from '../../directory/directory-model.js';
import type { DecisionRecord } from '../../policy/decision-record.js';
import { PolicyEngine } from '../../policy/policy-engine.js';
import { STEPS } from '../../policy/steps.js';
import type { Verdict } from '../../policy/verdict.js';
import { replaySession } from './replay-session.js';

interface Edit {
  says: string;
  apply(r: Rules): void;
}

export interface Flip {
  /** Index of the refused event in the record. */
  event: number;
  refusal: string;
  /** Verified edits, smallest first; empty when no single edit flips it. */
  changes: string[];
  /** Why no rule change applies, when none does. */
  note?: string;
}

const REFUSED = new Set(['reject', 'drop', 'tempfail']);

function without(list: string[], entry: string): string[] {
  return list.filter((x) => x !== entry);
}

/** The edits worth trying for one refusal. */
function editsFor(v: Verdict, record: DecisionRecord, address: string | undefined): Edit[] {
  const ip = record.client;
  const rule = v.rule;
  const listener = (r: Rules) => r.listeners.find((l) => l.name === record.listener);
  switch (v.step) {
    case STEPS.ipRestrictions.step:
      return [
        rule !== undefined
          ? { says: `remove '${rule}' from listeners[${record.listener}].ipRestrictions.except`, apply: (r) => void (listener(r)!.ipRestrictions.except = without(listener(r)!.ipRestrictions.except, rule)) }
          : { says: `add ${ip} to listeners[${record.listener}].ipRestrictions.except`, apply: (r) => void listener(r)!.ipRestrictions.except.push(ip) },
      ];
    case STEPS.denyList.step:
      return [
        ...(rule !== undefined ? [{ says: `remove '${rule}' from connectionFilter.deny`, apply: (r: Rules) => void (r.connectionFilter.deny = without(r.connectionFilter.deny, rule)) }] : []),
        { says: `add ${ip} to connectionFilter.accept`, apply: (r) => void r.connectionFilter.accept.push(ip) },
      ];
    case STEPS.envelopeSender.step:
    case STEPS.headerFrom.step:
      if (rule === '<>') return [{ says: 'set senderFilter.blankSender: false', apply: (r) => void (r.senderFilter.blankSender = false) }];
      return rule !== undefined ? [{ says: `remove '${rule}' from senderFilter.blocked`, apply: (r) => void (r.senderFilter.blocked = without(r.senderFilter.blocked, rule)) }] : [];
    case STEPS.relayProtection.step: {
      const domain = address?.split('@').pop();
      return [
        ...(domain ? [{ says: `add ${domain} to acceptedDomains`, apply: (r: Rules) => void r.acceptedDomains.push(domain) }] : []),
        { says: `add ${ip} to listeners[${record.listener}].relayFrom`, apply: (r) => void listener(r)!.relayFrom.push(ip) },
      ];
    }
    case STEPS.dnsbl.step:
      return [
        ...(address ? [{ says: `add ${address} to connectionFilter.exceptions`, apply: (r: Rules) => void r.connectionFilter.exceptions.push(address) }] : []),
        ...(rule !== undefined
          ? [{ says: `remove the DNSBL rule '${rule}' from connectionFilter.rules (or make it reportOnly)`, apply: (r: Rules) => void (r.connectionFilter.rules = r.connectionFilter.rules.filter((x) => x.name !== rule)) }]
          : []),
        { says: `add ${ip} to connectionFilter.accept`, apply: (r) => void r.connectionFilter.accept.push(ip) },
      ];
    case STEPS.blockedRecipients.step:
      return rule !== undefined ? [{ says: `remove '${rule}' from recipientFilter.blocked`, apply: (r) => void (r.recipientFilter.blocked = without(r.recipientFilter.blocked, rule)) }] : [];
    case STEPS.directory.step:
      return address ? [{ says: `add ${address} to directory.addresses`, apply: (r) => void r.directory.addresses.push(address) }] : [];
    default:
      return [];
  }
}

function flipped(kind: string, v: Verdict | undefined): boolean {
  if (!v) return false;
  return kind === 'data' ? v.action === 'relay' || v.action === 'archive' : !REFUSED.has(v.action);
}

/** Each refusal of `record` with the single edits of `rules` that, replayed, would have let it through. */
export async function flipsOf(record: DecisionRecord, rules: Rules): Promise<Flip[]> {
  const flips: Flip[] = [];
  for (const [i, event] of record.events.entries()) {
    const v = event.verdict;
    if (!REFUSED.has(v.action)) continue;
    const address = event.kind === 'rcpt' ? event.address : undefined;
    const flip: Flip = { event: i, refusal: `${v.code} ${v.enhanced} at step ${v.step} ${v.check}${v.rule !== undefined ? ` (${v.rule})` : ''}`, changes: [] };
    if (v.step === STEPS.harvest.step) flip.note = 'harvest protection counts refused recipients; no list entry decides it (harvest.disconnectAfter sets the limit)';
    for (const edit of editsFor(v, record, address)) {
      const changed = structuredClone(rules);
      if (!changed.listeners.some((l) => l.name === record.listener)) break;
      edit.apply(changed);
      const engine = new PolicyEngine(changed, { dnsbl: { lookup: () => Promise.reject(new Error('unused')) }, health: { isEnforced: () => true }, directory: DirectoryModel.fromRules(changed) });
      const replayed = await replaySession(engine, record);
      if (flipped(event.kind, replayed.verdicts[i])) flip.changes.push(edit.says);
    }
    flips.push(flip);
  }
  return flips;
}
