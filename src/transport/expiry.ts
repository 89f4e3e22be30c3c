import type { DeliveryReport } from './delivery-report.js';
import { formatResult } from './delivery-result.js';
import { isReadable } from './header-block.js';
import type { QueueContext } from './queue-context.js';
import { copiesOf, type QueuedMessage } from './queue-store.js';
import { isExpired } from './retry-schedule.js';

/** The end of a message that outlived the expiration time-out (`transport.retry.expireHours`): NDR 4.4.7. */
export class Expiry {
  constructor(
    private readonly ctx: QueueContext,
    private readonly reports: DeliveryReport,
  ) {}

  /** Whether a message has outlived the expiration time-out. */
  isDue(m: QueuedMessage): boolean {
    return isExpired(m.envelope.receivedAt, this.ctx.clock.now(), this.ctx.rules.transport.retry);
  }

  /**
   * Fails the copies still pending with 4.4.7, naming the last error (`lastError` for a record that
   * kept failing without an attempt, else each copy's last result), reports them, and removes the
   * record. A report needs the content, so when that is unreadable the failure is only logged: no
   * retry could ever send it.
   */
  async expire(m: QueuedMessage, lastError?: string): Promise<void> {
    const { store, rules, onError } = this.ctx;
    const deliveries = copiesOf(m);
    for (const d of deliveries) {
      if (d.status !== 'pending') continue;
      const last = lastError ?? (d.result ? formatResult(d.result) : undefined);
      d.status = 'failed';
      d.result = {
        address: d.address, outcome: 'failed', enhanced: '4.4.7',
        text: `Message expired: not delivered within ${rules.transport.retry.expireHours} hours${last ? ` (last error: ${last})` : ''}`,
        ...(d.result?.remoteMta ? { remoteMta: d.result.remoteMta } : {}),
      };
    }
    try {
      await this.reports.report({ ...m, deliveries });
    } catch (err) {
      if (await isReadable(store.contentPath(m.contentId))) throw err;
      onError(err as Error, `reporting the expiry of ${m.envelope.id}: content unreadable, removed unreported`);
    }
    await store.remove(m.envelope.id);
  }
}
