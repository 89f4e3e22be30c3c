/**
 * Delivery at receipt, as an LMTP server delivers: a received message whose whole delivery is one copy
 * to one local mailbox (the split's own decision, `part-plan.ts`) goes into its Maildir before its
 * 250, and nothing is queued. The Maildir file's fsync and the sync of `new/` are all that one
 * session pays; the slot's sync and the queue's later work are not needed. Anything else, and any
 * delivery that does not make it, takes the queue path unchanged: the client never hears of it.
 */
import type { DirectoryModel } from '../directory/directory-model.js';
import type { DeliveryAttempt } from './delivery-attempt.js';
import { headerBlockOf } from './header-block.js';
import { planParts, trackExpansions } from './part-plan.js';
import type { QueueContext } from './queue-context.js';
import type { QueuedMessage } from './queue-store.js';
import { notifyAllows } from './retry-schedule.js';
import { isQueueFrozen } from './scheduler.js';

export class ReceiptDelivery {
  constructor(
    private readonly ctx: QueueContext,
    /** The directory in force now, as the split uses it. */
    private readonly directory: () => DirectoryModel,
    private readonly delivery: Pick<DeliveryAttempt, 'atReceipt' | 'delivered'>,
  ) {}

  /**
   * Delivers received message `m` (its content in memory) if it can be delivered whole at once and
   * resolves to what writes its tracking lines and metric, to be called after its `received` line;
   * undefined when it is to be queued. A pre-submission queue frozen by the administrator holds its
   * mail, so nothing is delivered. A success DSN (NOTIFY=SUCCESS) is written as a queued message that
   * quotes the content from its file, which a message never queued does not have: such a message
   * takes the queue path. Never rejects: an unexpected error is reported and the message queued.
   */
  async deliver(m: QueuedMessage, content: Buffer): Promise<(() => void) | undefined> {
    const { store, rules } = this.ctx;
    if (isQueueFrozen(store, 'pre-submission')) return undefined;
    try {
      const plan = planParts(m, headerBlockOf(content), this.directory(), rules, store);
      const part = plan.straight;
      if (!part || part.deliveries.some((d) => notifyAllows(d.recipient, 'SUCCESS'))) return undefined;
      const placed = await this.delivery.atReceipt(part, content);
      if (!placed) return undefined;
      return () => {
        this.ctx.track('submitted', m, m.envelope.recipients.map((r) => r.address));
        trackExpansions(this.ctx, m, plan);
        this.delivery.delivered(part, [placed]);
      };
    } catch (err) {
      this.ctx.onError(err as Error, `delivering ${m.envelope.id} at receipt`);
      return undefined;
    }
  }
}
