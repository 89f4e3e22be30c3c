import type { Rules } from '../config/schema.js';
import type { DirectoryModel } from '../directory/directory-model.js';
import { domainOf } from '../net/domain.js';
import { categorize, countHops, outboundRecipient, type Categorized } from './categorizer.js';
import type { QueueContext } from './queue-context.js';
import { remoteQueue, type Delivery, type QueuedMessage, type QueueStore } from './queue-store.js';
import { isQueueFrozen } from './scheduler.js';

/** A part of a message and the queue it is added to. */
export interface PlannedPart {
  queue: string;
  part: QueuedMessage;
}

/** What the split of one message makes of it. */
export interface PartPlan {
  categorized: Categorized;
  /** A local part (every local mailbox), then one remote part per domain. */
  parts: PlannedPart[];
  /** The part delivered straight into its mailbox instead of being queued, when there is one. */
  straight?: QueuedMessage;
}

/**
 * Categorizes a message (with the hop count it arrived with) and splits it into parts, and decides
 * which part, if any, goes straight into its mailbox: one decision for the split out of the queue
 * (`message-parts.ts`) and for delivery at receipt (`receipt-delivery.ts`). Straight only when the
 * whole message is one copy to one local mailbox, nothing failed, and `local-delivery` is not frozen
 * (a frozen queue holds its mail): one copy is one Maildir file whose `_Q<part id>` mark a repeated
 * delivery finds, where several copies would need a record of which ones were made.
 */
export function planParts(m: QueuedMessage, header: string, directory: DirectoryModel, rules: Rules, store: QueueStore): PartPlan {
  // The hop count the message arrived with: our own Received: field (on received mail, which `sentSize` marks) is not one.
  const ownField = m.envelope.sentSize !== undefined ? 1 : 0;
  const c = categorize(m.envelope, { hopCount: countHops(header) - ownField }, directory, rules);

  const groups: { queue: string; kind: 'local' | 'remote'; domain?: string; deliveries: Delivery[] }[] = [];
  if (c.local.length > 0) {
    groups.push({
      queue: 'local-delivery',
      kind: 'local',
      deliveries: c.local.map((l) => ({
        address: l.mailbox,
        recipient: l.recipient,
        status: 'pending',
        ...(l.quotaBytes !== undefined ? { quotaBytes: l.quotaBytes } : {}),
      })),
    });
  }
  const byDomain = new Map<string, Delivery[]>();
  for (const r of c.remote) {
    const domain = domainOf(r.address);
    const list = byDomain.get(domain) ?? [];
    list.push({ address: r.address, recipient: r.recipient, outbound: outboundRecipient(r), status: 'pending' });
    byDomain.set(domain, list);
  }
  for (const [domain, deliveries] of byDomain) groups.push({ queue: remoteQueue(domain), kind: 'remote', domain, deliveries });

  // Part ids follow from the message id, so a categorization repeated after a crash finds the parts it already made.
  const parts = groups.map(
    (g, i): PlannedPart => ({
      queue: g.queue,
      part: {
        envelope: { ...m.envelope, id: `${m.envelope.id}-${i + 1}`, recipients: g.deliveries.map((d) => d.recipient) },
        contentId: m.contentId,
        rootId: m.rootId,
        ...(m.messageId ? { messageId: m.messageId } : {}),
        kind: g.kind,
        ...(g.domain ? { domain: g.domain } : {}),
        deliveries: g.deliveries,
        attempts: 0,
        nextAttemptAt: 0,
      },
    }),
  );
  const only = parts.length === 1 ? parts[0]!.part : undefined;
  const straight = only?.kind === 'local' && only.deliveries.length === 1 && c.failed.length === 0 && !isQueueFrozen(store, 'local-delivery') ? only : undefined;
  return { categorized: c, parts, ...(straight ? { straight } : {}) };
}

/** The tracking log's `expanded` line for each group the plan expanded. */
export function trackExpansions(ctx: QueueContext, m: QueuedMessage, plan: PartPlan): void {
  for (const e of plan.categorized.expansions) ctx.track('expanded', m, e.members, `group ${e.group} expanded to ${e.members.length} member(s)`);
}
