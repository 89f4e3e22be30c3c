import type { DirectoryModel } from '../directory/directory-model.js';
import type { DeliveryAttempt, PlacedCopy } from './delivery-attempt.js';
import type { DeliveryReport } from './delivery-report.js';
import type { Expiry } from './expiry.js';
import { headerBlockOf, readHeaderBlock } from './header-block.js';
import { planParts, trackExpansions } from './part-plan.js';
import type { QueueContext } from './queue-context.js';
import type { Delivery, QueuedMessage } from './queue-store.js';
import { failedRetryAt } from './retry-schedule.js';

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
    const plan = planParts(m, header, this.directory(), rules, store);
    trackExpansions(this.ctx, m, plan);

    let direct: { part: QueuedMessage; copy: PlacedCopy } | undefined;
    for (const { queue, part } of plan.parts) {
      if (store.get(part.envelope.id)) continue;
      // The common case, one local mailbox, goes straight into it; only a copy that did not make it is queued.
      const copy = part === plan.straight ? await this.local.localBeforeQueueing(part) : undefined;
      if (copy) {
        direct = { part, copy };
        continue;
      }
      await store.add(queue, part);
    }
    const failed: Delivery[] = plan.categorized.failed.map((f) => ({ address: f.result.address, recipient: f.recipient, status: 'failed', result: f.result }));
    await this.reports.report({ ...m, deliveries: failed });
    // Delivered straight from here, the message's record stands for its copy until the copy is durable.
    if (direct) await this.local.settle(m.envelope.id, direct.part, [direct.copy]);
    else await store.remove(m.envelope.id);
  }
}
