import { isQueueName, QueueCommandError, type DeleteNotice } from './admin-api.js';
import type { DeliveryReport } from './delivery-report.js';
import type { QueueContext } from './queue-context.js';
import { copiesOf, queueState, type QueuedMessage } from './queue-store.js';
import { notifyAllows } from './retry-schedule.js';
import type { Router } from './router.js';
import type { Scheduler } from './scheduler.js';

const DELETED_RESULT = { outcome: 'failed' as const, code: 550, enhanced: '5.0.0', text: 'Message deleted from the queue by the administrator' };

/** The queue viewer's changes: freeze, unfreeze, retry now, delete; each waits for an attempt in flight on the message. */
export class QueueAdmin {
  constructor(
    private readonly ctx: QueueContext,
    private readonly scheduler: Scheduler,
    private readonly router: Router,
    private readonly reports: DeliveryReport,
  ) {}

  /** Freezes (or unfreezes) a queue or one message: frozen mail stays put, listed as 4.3.2. */
  async setFrozen(target: string, frozen: boolean): Promise<{ target: string; kind: 'queue' | 'message' }> {
    if (isQueueName(target)) {
      await this.ctx.store.setFrozen(target, frozen);
      if (!frozen) this.scheduler.kick();
      return { target, kind: 'queue' };
    }
    await this.change(target, (m) => this.ctx.store.update({ ...m, frozen }));
    if (!frozen) this.scheduler.kick();
    return { target, kind: 'message' };
  }

  /** Makes a queue's messages (or one message) due now, puts connectors marked down back in service, and runs. */
  async retryNow(target: string): Promise<{ target: string; count: number }> {
    const { rules, store } = this.ctx;
    for (const c of rules.transport.connectors) this.router.markUp(c.name);
    const ids = isQueueName(target)
      ? store.all().filter((s) => s.queue === target || queueState(s.queue) === target).map((s) => s.message.envelope.id)
      : [target];
    let count = 0;
    for (const id of ids) {
      const done = await this.change(id, (m) => store.update({ ...m, nextAttemptAt: 0 })).then(
        () => true,
        (err: unknown) => {
          // A message of a queue that left it meanwhile (delivered) is no error; a named one that is gone is.
          if (isQueueName(target) && err instanceof QueueCommandError) return false;
          throw err;
        },
      );
      if (done) count++;
    }
    this.scheduler.kick();
    return { target, count };
  }

  /**
   * Deletes a message; with `ndr`, its undelivered recipients are reported first, as any failure is:
   * `notice` says where that went (an NDR to the sender; Badmail for a bounce; nowhere when NOTIFY
   * asked for no failure report or nothing was left undelivered).
   */
  async delete(id: string, ndr: boolean): Promise<{ id: string; ndr: boolean; notice: DeleteNotice }> {
    let notice: DeleteNotice = 'none';
    await this.change(id, async (m) => {
      notice = await this.deleteNow(m, ndr);
    });
    this.scheduler.kick();
    return { id, ndr, notice };
  }

  private async deleteNow(m: QueuedMessage, ndr: boolean): Promise<DeleteNotice> {
    const deliveries = copiesOf(m);
    const pending = deliveries.filter((d) => d.status === 'pending');
    for (const d of pending) {
      d.status = 'failed';
      d.result = { ...DELETED_RESULT, address: d.address };
      if (!ndr) d.reported = true;
    }
    let notice: DeleteNotice = 'none';
    if (ndr) {
      await this.reports.report({ ...m, deliveries });
      if (m.envelope.isDsn === true || m.envelope.mailFrom === '') notice = pending.length > 0 ? 'badmail' : 'none';
      else notice = pending.some((d) => notifyAllows(d.recipient, 'FAILURE')) ? 'ndr' : 'none';
    } else {
      this.ctx.track('failed', m, pending.map((d) => d.address), 'deleted from the queue by the administrator (no NDR)');
    }
    await this.ctx.store.remove(m.envelope.id);
    return notice;
  }

  /** Runs a change to one message, exclusive of any attempt at it; 404 when there is no such message. */
  private change(id: string, change: (m: QueuedMessage) => Promise<void>): Promise<void> {
    return this.scheduler.exclusive(id, () => {
      const s = this.ctx.store.get(id);
      if (!s) return Promise.reject(new QueueCommandError(404, `no queued message ${id}`));
      return change(s.message);
    });
  }
}
