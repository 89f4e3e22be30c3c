import type { Rules } from '../config/schema.js';
import { normalizeAddress, splitAddress } from '../net/address.js';
import { isValidAddress } from './address-space.js';
import { canonicalDomain } from '../net/domain.js';
import type { DirectoryModel } from '../directory/directory-model.js';
import type { Envelope, EnvelopeRecipient, RecipientResult } from './types.js';

/** Every envelope recipient resolved to where its copies go, or why they cannot. */
export interface Categorized {
  /** `mailbox` is the canonical mailbox address; `quotaBytes` its limit, for local delivery's 4.2.2 check. */
  local: { recipient: EnvelopeRecipient; mailbox: string; quotaBytes?: number }[];
  /** `address` is the destination after alias/contact forwarding (or the recipient itself). */
  remote: { recipient: EnvelopeRecipient; address: string }[];
  /** `result.address` is the address that failed (a group member, an alias target, or the recipient). */
  failed: { recipient: EnvelopeRecipient; result: RecipientResult }[];
  /** Each distribution group expanded, once per message, with its direct members (for the tracking log). */
  expansions: { group: string; members: string[] }[];
}

/** A permanent failure, as the categorizer reports it. */
function failure(address: string, code: number, enhanced: string, text: string): RecipientResult {
  return { address, outcome: 'failed', code, enhanced, text };
}

/** Counts `Received:` header lines in a header block: the message's hop count. */
export function countHops(headerBlock: string): number {
  return (headerBlock.match(/^received:/gim) ?? []).length;
}

/** The recipient to hand remote delivery: the forwarded address, with ORCPT keeping the original one. */
export function outboundRecipient(item: { recipient: EnvelopeRecipient; address: string }): EnvelopeRecipient {
  const { recipient, address } = item;
  const forwarded = normalizeAddress(recipient.address) !== normalizeAddress(address);
  const orcpt = recipient.orcpt ?? (forwarded ? `rfc822;${recipient.address}` : undefined);
  return { ...recipient, address, ...(orcpt !== undefined ? { orcpt } : {}) };
}

/**
 * Resolves each recipient against the directory, whose addresses compare case-insensitively; an
 * address the directory does not own goes on with its local part as given. Mailboxes (by any proxy
 * address) are local; aliases
 * and contacts forward (a chain that comes back to itself fails 5.4.6); groups expand once per message,
 * a group met again is not expanded again, and every final destination gets one copy. A local address
 * nobody owns fails 5.1.1 unless `forwardUnresolvedTo` is set, when it goes remote (the router sends
 * it to that host). Message limits fail every recipient, except on the engine's own DSNs: hop count
 * 4.4.6, size 5.2.3 (of the bytes the client sent), recipient count 5.5.3; a message larger than a
 * mailbox's whole quota fails that mailbox 5.2.2.
 */
export function categorize(env: Envelope, headers: { hopCount: number }, dir: DirectoryModel, rules: Rules): Categorized {
  const out: Categorized = { local: [], remote: [], failed: [], expansions: [] };
  const limits = rules.transport.limits;
  // Our own reports carry the original whole, so a near-limit message's NDR would break the limit and land in Badmail.
  const messageFailure = env.isDsn ? undefined : messageLimitFailure(env, headers.hopCount, limits);
  if (messageFailure) {
    for (const recipient of env.recipients) {
      out.failed.push({ recipient, result: { ...messageFailure, address: recipient.address } });
    }
    return out;
  }

  const delivered = new Set<string>();
  const expandedGroups = new Set<string>();

  /** Resolves one address; false when it led only back into a group already being expanded. */
  const resolve = (recipient: EnvelopeRecipient, address: string, forwardChain: string[], groupChain: string[]): boolean => {
    const key = normalizeAddress(address);
    if (!isValidAddress(key)) {
      out.failed.push({ recipient, result: failure(address, 553, '5.1.3', `Bad recipient address syntax: ${address}`) });
      return true;
    }
    const entry = dir.lookup(key);
    if (entry === undefined) {
      if (dir.isLocal(key) && dir.forwardUnresolvedTo === undefined) {
        out.failed.push({ recipient, result: failure(key, 550, '5.1.1', `Recipient not found: ${key}`) });
        return true;
      }
      // Mail we pass on keeps its local part as given (RFC 5321 2.4): only the next hop may fold its case.
      const onward = relayAddress(address);
      if (!delivered.has(onward)) {
        delivered.add(onward);
        out.remote.push({ recipient, address: onward });
      }
      return true;
    }
    switch (entry.kind) {
      case 'mailbox': {
        if (entry.quotaBytes !== undefined && env.size > entry.quotaBytes) {
          out.failed.push({ recipient, result: failure(key, 552, '5.2.2', `Message larger than the mailbox quota of ${entry.mailbox}`) });
          return true;
        }
        if (!delivered.has(entry.mailbox)) {
          delivered.add(entry.mailbox);
          out.local.push({ recipient, mailbox: entry.mailbox, ...(entry.quotaBytes !== undefined ? { quotaBytes: entry.quotaBytes } : {}) });
        }
        return true;
      }
      case 'alias': {
        if (forwardChain.includes(key)) {
          const loop = [...forwardChain.slice(forwardChain.indexOf(key)), key].join(' -> ');
          out.failed.push({ recipient, result: failure(key, 554, '5.4.6', `Forwarding loop in the directory: ${loop}`) });
          return true;
        }
        for (const target of entry.forwardTo) resolve(recipient, target, [...forwardChain, key], groupChain);
        return true;
      }
      case 'group': {
        // A group already expanded for this message (a nested loop, or listed twice) adds nobody new.
        if (expandedGroups.has(key)) return !groupChain.includes(key);
        expandedGroups.add(key);
        out.expansions.push({ group: key, members: [...entry.members] });
        // An empty group is a valid (if useless) target; only a group that leads nowhere but back is a loop.
        let reached = entry.members.length === 0;
        for (const member of entry.members) {
          if (resolve(recipient, member, forwardChain, [...groupChain, key])) reached = true;
        }
        return reached;
      }
    }
  };

  for (const recipient of env.recipients) {
    if (!resolve(recipient, recipient.address, [], [])) {
      // Groups that only lead back into each other: nobody can ever receive this recipient's copy.
      out.failed.push({ recipient, result: failure(normalizeAddress(recipient.address), 554, '5.4.6', 'Distribution group loop with no members') });
    }
  }
  return out;
}

/** An address to relay: the local part exactly as given, the domain (case-insensitive by DNS) normalised. */
function relayAddress(address: string): string {
  const parts = splitAddress(address.trim());
  return parts ? `${parts.local}@${canonicalDomain(parts.domain)}` : address.trim();
}

/** The failure every recipient gets when the message as a whole breaks a limit, if it does. */
function messageLimitFailure(
  env: Envelope,
  hopCount: number,
  limits: Rules['transport']['limits'],
): Omit<RecipientResult, 'address'> | undefined {
  if (hopCount > limits.maxHopCount) {
    // The guide reports a hop-count loop as 4.4.6, yet fails the message at once rather than retrying.
    return { outcome: 'failed', code: 554, enhanced: '4.4.6', text: `Hop count exceeded (${hopCount} > ${limits.maxHopCount}): possible mail loop` };
  }
  // Records queued before `sentSize` existed have only the size with our Received: field.
  const size = env.sentSize ?? env.size;
  if (size > limits.maxMessageSize) {
    return { outcome: 'failed', code: 552, enhanced: '5.2.3', text: `Message size ${size} exceeds the limit of ${limits.maxMessageSize} bytes` };
  }
  if (env.recipients.length > limits.maxRecipients) {
    return { outcome: 'failed', code: 550, enhanced: '5.5.3', text: `Too many recipients (${env.recipients.length} > ${limits.maxRecipients})` };
  }
  return undefined;
}
