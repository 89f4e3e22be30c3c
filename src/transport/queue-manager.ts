import type { BadmailWriter } from '../badmail/badmail-writer.js';
import type { Rules } from '../config/schema.js';
import type { DirectoryModel } from '../directory/directory-model.js';
import type { Metrics } from '../observability/metrics.js';
import { systemClock, type Clock, type Timers } from '../runtime/clock.js';
import { BatchedDirSync } from '../storage/batched-dir-sync.js';
import type { DeleteNotice, MessageSummary, QueueSummary } from './admin-api.js';
import { DeliveryAttempt } from './delivery-attempt.js';
import { DeliveryReport } from './delivery-report.js';
import { Expiry } from './expiry.js';
import { MessageParts } from './message-parts.js';
import { QueueAdmin } from './queue-admin.js';
import { queueContext, type QueueContext } from './queue-context.js';
import { queueState, type QueuedMessage, type QueueStore, type StoredMessage } from './queue-store.js';
import { QueueViews } from './queue-views.js';
import { ReceiptDelivery } from './receipt-delivery.js';
import type { RemoteDelivery } from './remote-delivery.js';
import { failedRetryAt } from './retry-schedule.js';
import type { Router } from './router.js';
import { Scheduler } from './scheduler.js';
import { Settling } from './settling.js';
import type { TrackingEventName, TrackingLog } from './tracking-log.js';

/** What the queue manager works with. */
export interface QueueManagerOptions {
  rules: Rules;
  store: QueueStore;
  clock: Clock;
  /** The wait of a batch of `new/` syncs (default: the process's timers). */
  timers?: Timers;
  /** The directory in force now: a reload of the rule set replaces it between messages. */
  directory: () => DirectoryModel;
  router: Router;
  remote: RemoteDelivery;
  mailboxRoot: string;
  /** Where bounces that cannot be returned go. */
  badmail: BadmailWriter;
  tracking: TrackingLog;
  metrics?: Metrics;
  /** Reports an error that was handled (the message is retried) but must be seen. */
  onError(err: Error, context: string): void;
}

/**
 * How long a delivery's `new/` sync waits for others to share it: long enough that at one session a
 * few dozen deliveries share it (the engine delivers hundreds a second), short enough that the
 * records and content files it holds back stay few, and far inside the 5 s in which ext4 commits
 * its journal anyway. The Maildir file itself is visible in `new/` at once; only its record waits.
 */
const NEW_SYNC_WINDOW_MS = 100;
/** A batch this large is synced at once: it bounds what a crash makes the engine look for again. */
const NEW_SYNC_BATCH = 64;

/**
 * Moves messages through the queues: pre-submission → awaiting directory lookup (categorize, expand:
 * `message-parts.ts`) → local delivery / remote delivery per destination (`delivery-attempt.ts`) /
 * failed; temporary failures wait on the retry schedule, an expired message gets its NDR
 * (`expiry.ts`), DSNs and Badmail go through `delivery-report.ts`. `scheduler.ts` decides what is due
 * and when; the queue viewer's views and changes are `queue-views.ts` and `queue-admin.ts`.
 */
export class QueueManager {
  private readonly ctx: QueueContext;
  private readonly scheduler: Scheduler;
  private readonly parts: MessageParts;
  private readonly delivery: DeliveryAttempt;
  private readonly expiry: Expiry;
  private readonly views: QueueViews;
  private readonly admin: QueueAdmin;
  private readonly settling: Settling;
  private readonly atReceipt: ReceiptDelivery;

  constructor(o: QueueManagerOptions) {
    const ctx = (this.ctx = queueContext(o));
    const reports = new DeliveryReport(ctx, o.badmail);
    this.expiry = new Expiry(ctx, reports);
    this.settling = new Settling(new BatchedDirSync(o.timers ?? systemClock, NEW_SYNC_WINDOW_MS, NEW_SYNC_BATCH), o.onError);
    this.delivery = new DeliveryAttempt(ctx, o, reports, this.expiry, this.settling);
    this.parts = new MessageParts(ctx, o.directory, reports, this.expiry, this.delivery);
    this.atReceipt = new ReceiptDelivery(ctx, o.directory, this.delivery);
    this.scheduler = new Scheduler({
      store: o.store,
      clock: o.clock,
      attempt: (s) => this.attempt(s),
      settling: (id) => this.settling.of(id),
      afterRun: () => o.metrics?.transportQueues(this.views.stats()),
      onError: o.onError,
    });
    this.views = new QueueViews(o.store, o.clock, (id) => this.scheduler.isBusy(id));
    this.admin = new QueueAdmin(ctx, this.scheduler, o.router, reports);
  }

  /** Starts looking for due work every `pollMs` (and at once). */
  start(pollMs = 1000): void {
    this.scheduler.start(pollMs);
  }

  /** Stops the timer, waits for the work in progress, and syncs and settles every delivery still waiting for its batch. */
  async stop(): Promise<void> {
    await this.scheduler.stop();
    await this.settling.flush();
  }

  /** Asks for a run soon (new mail, an administrator's retry); errors are reported, not thrown. */
  kick(): void {
    this.scheduler.kick();
  }

  /** Works on everything due now, including what that work makes due; resolves when nothing due is left and every delivery is settled. */
  async runDue(): Promise<void> {
    await this.scheduler.runDue();
    await this.settling.flush();
  }

  /** Delivers a received message before its 250 when it can be delivered whole at once (`receipt-delivery.ts`). */
  deliverNow(m: QueuedMessage, content: Buffer): Promise<(() => void) | undefined> {
    return this.atReceipt.deliver(m, content);
  }

  /** Writes one tracking-log line about a message. */
  track(event: TrackingEventName, m: QueuedMessage, recipients: string[], reason?: string): void {
    this.ctx.track(event, m, recipients, reason);
  }

  // ---- the queue viewer's operations ----

  queues(): QueueSummary[] {
    return this.views.queues();
  }

  messages(queue: string): MessageSummary[] {
    return this.views.messages(queue);
  }

  show(id: string): MessageSummary & { record: QueuedMessage } {
    return this.views.show(id);
  }

  setFrozen(target: string, frozen: boolean): Promise<{ target: string; kind: 'queue' | 'message' }> {
    return this.admin.setFrozen(target, frozen);
  }

  retryNow(target: string): Promise<{ target: string; count: number }> {
    return this.admin.retryNow(target);
  }

  delete(id: string, ndr: boolean): Promise<{ id: string; ndr: boolean; notice: DeleteNotice }> {
    return this.admin.delete(id, ndr);
  }

  /** One step of one record, by the state of its queue; unexpected trouble is retried, never dropped. */
  private attempt(s: StoredMessage): Promise<void> {
    return this.step(s).catch((err: unknown) => this.recordFailure(s, err as Error));
  }

  private async step(s: StoredMessage): Promise<void> {
    const { store } = this.ctx;
    const m = s.message;
    switch (queueState(s.queue)) {
      case 'pre-submission':
        // Categorized straight from pre-submission: a move through awaiting-directory-lookup first
        // cost a rewrite, a rename and four fsyncs per message, and a crash there redoes the same split.
        this.ctx.track('submitted', m, m.envelope.recipients.map((r) => r.address));
        await this.parts.split(m);
        return;
      case 'dsn-pending':
      case 'failed-retry':
        await store.move({ ...m, nextAttemptAt: 0 }, s.queue === 'dsn-pending' ? 'pre-submission' : 'awaiting-directory-lookup');
        return;
      case 'awaiting-directory-lookup':
        await this.parts.split(m);
        return;
      case 'local-delivery':
      case 'deferred':
        await this.delivery.local(m);
        return;
      case 'remote-delivery':
      case 'unreachable':
        await this.delivery.remote(m);
        return;
    }
  }

  /** A step that failed unexpectedly (a disk error, say): the record expires if it is due to, else is tried again like a failed message. */
  private async recordFailure(s: StoredMessage, err: Error): Promise<void> {
    const { store, clock, rules, onError } = this.ctx;
    const id = s.message.envelope.id;
    onError(err, `processing ${id} in ${s.queue}`);
    const lastError = `4.3.0 ${err.message}`;
    let current = store.get(id);
    if (current && this.expiry.isDue(current.message)) {
      try {
        await this.expiry.expire(current.message, lastError);
        return;
      } catch (e) {
        onError(e as Error, `expiring ${id}`);
      }
      current = store.get(id);
    }
    if (!current) return;
    const m = { ...current.message, lastError, attempts: current.message.attempts + 1, nextAttemptAt: failedRetryAt(clock.now(), rules.transport.retry) };
    await store.update(m).catch((e: unknown) => onError(e as Error, `recording the failure of ${id}`));
  }
}
