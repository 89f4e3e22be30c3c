import type { DirectoryModel } from '../directory/directory-model.js';
import { domainOf } from '../net/domain.js';
import { categorize, countHops, outboundRecipient } from './categorizer.js';
import type { DeliveryAttempt, PlacedCopy } from './delivery-attempt.js';
import type { DeliveryReport } from './delivery-report.js';
import type { Expiry } from './expiry.js';
import { headerBlockOf, readHeaderBlock } from './header-block.js';
import type { QueueContext } from './queue-context.js';
import { remoteQueue, type Delivery, type QueuedMessage } from './queue-store.js';
import { failedRetryAt } from './retry-schedule.js';
import { isQueueFrozen } from './scheduler.js';

/**
 * The step out of `awaiting-directory-lookup`: resolves a message's recipients and splits it into a
 * local part and one remote part per domain; the recipients that fail here are reported at once.
 */
export class MessageParts {
  constructor(
    private readonly ctx: QueueContext,
    /** The directory in force now: a reload of the rule set replaces it between messages. */
    private readonly directory: () => DirectoryModel,
    private readonly reports: DeliveryReport,
    private readonly expiry: Expiry,
    private readonly local: Pick<DeliveryAttempt, 'localBeforeQueueing' | 'settle'>,
  ) {}

  /** Splits one message into its parts; unreadable content waits in `failed-retry` until it expires. */
  async split(m: QueuedMessage): Promise<void> {
    const { rules, store, clock } = this.ctx;
    let header: string;
    try {
      const held = await store.heldContent(m.contentId);
      header = held ? headerBlockOf(held) : await readHeaderBlock(await store.contentFile(m.contentId));
    } catch (err) {
      const lastError = `4.3.0 Message content unreadable: ${(err as Error).message}`;
      if (this.expiry.isDue(m)) {
        this.ctx.onError(err as Error, `reading the content of ${m.envelope.id}`);
        await this.expiry.expire(m, lastError);
        return;
      }
      await store.move({ ...m, lastError, attempts: m.attempts + 1, nextAttemptAt: failedRetryAt(clock.now(), rules.transport.retry) }, 'failed-retry');
      this.ctx.metrics?.transportRetry('failed-retry');
      return;
    }
    // The hop count the message arrived with: our own Received: field (on received mail, which `sentSize` marks) is not one.
    const ownField = m.envelope.sentSize !== undefined ? 1 : 0;
    const c = categorize(m.envelope, { hopCount: countHops(header) - ownField }, this.directory(), rules);
    for (const e of c.expansions) this.ctx.track('expanded', m, e.members, `group ${e.group} expanded to ${e.members.length} member(s)`);

    const parts: { queue: string; kind: 'local' | 'remote'; domain?: string; deliveries: Delivery[] }[] = [];
    if (c.local.length > 0) {
      parts.push({
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
    for (const [domain, deliveries] of byDomain) parts.push({ queue: remoteQueue(domain), kind: 'remote', domain, deliveries });

    // Part ids follow from the message id, so a categorization repeated after a crash finds the parts it already made.
    // A frozen local-delivery queue holds its mail: the part is queued there as ever.
    const single = parts.length === 1 && c.failed.length === 0 && !isQueueFrozen(store, 'local-delivery');
    let direct: { part: QueuedMessage; copy: PlacedCopy } | undefined;
    for (const [i, p] of parts.entries()) {
      const id = `${m.envelope.id}-${i + 1}`;
      if (store.get(id)) continue;
      const part: QueuedMessage = {
        envelope: { ...m.envelope, id, recipients: p.deliveries.map((d) => d.recipient) },
        contentId: m.contentId,
        rootId: m.rootId,
        ...(m.messageId ? { messageId: m.messageId } : {}),
        kind: p.kind,
        ...(p.domain ? { domain: p.domain } : {}),
        deliveries: p.deliveries,
        attempts: 0,
        nextAttemptAt: 0,
      };
      // The common case, one local mailbox, goes straight into it; only a copy that did not make it is queued.
      const copy = single && p.kind === 'local' ? await this.local.localBeforeQueueing(part) : undefined;
      if (copy) {
        direct = { part, copy };
        continue;
      }
      await store.add(p.queue, part);
    }
    const failed: Delivery[] = c.failed.map((f) => ({ address: f.result.address, recipient: f.recipient, status: 'failed', result: f.result }));
    await this.reports.report({ ...m, deliveries: failed });
    // Delivered straight from here, the message's record stands for its copy until the copy is durable.
    if (direct) await this.local.settle(m.envelope.id, direct.part, [direct.copy]);
    else await store.remove(m.envelope.id);
  }
}
