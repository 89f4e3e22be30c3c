import type { TransportQueueStats } from '../observability/metrics.js';
import type { Clock } from '../runtime/clock.js';
import { isQueueName, QueueCommandError, type MessageSummary, type QueueSummary } from './admin-api.js';
import { queueState, QUEUE_STATES, type QueuedMessage, type QueueStore, type StoredMessage } from './queue-store.js';
import { isQueueFrozen } from './scheduler.js';

const FROZEN_STATUS = '4.3.2 Frozen by the administrator';

/** The queues as the queue viewer and the queue gauges see them. */
export class QueueViews {
  constructor(
    private readonly store: QueueStore,
    private readonly clock: Clock,
    /** Whether work on a record is in progress (its queue reads as active). */
    private readonly isBusy: (id: string) => boolean,
  ) {}

  /** Every queue: the fixed ones always, each remote destination while it holds mail or is frozen. */
  queues(): QueueSummary[] {
    const now = this.clock.now();
    const names = new Set<string>(QUEUE_STATES.filter((q) => q !== 'remote-delivery'));
    const all = this.store.all();
    for (const s of all) names.add(s.queue);
    for (const q of this.store.frozen()) names.add(q);
    return [...names].sort(queueOrder).map((name) => {
      const inQueue = all.filter((s) => s.queue === name).map((s) => s.message);
      const waiting = inQueue.filter((m) => m.attempts > 0 && m.nextAttemptAt > now);
      const state: QueueSummary['state'] = isQueueFrozen(this.store, name)
        ? 'frozen'
        : inQueue.some((m) => this.isBusy(m.envelope.id))
          ? 'active'
          : inQueue.length > 0 && waiting.length === inQueue.length
            ? 'retry'
            : 'ready';
      const oldest = Math.min(...inQueue.map((m) => m.envelope.receivedAt));
      const nextRetry = Math.min(...waiting.map((m) => m.nextAttemptAt));
      const lastError = [...inQueue].filter((m) => m.lastError).sort((a, b) => b.attempts - a.attempts)[0]?.lastError;
      return {
        name,
        state,
        count: inQueue.length,
        ...(inQueue.length ? { oldest: new Date(oldest).toISOString() } : {}),
        ...(waiting.length ? { nextRetry: new Date(nextRetry).toISOString() } : {}),
        ...(lastError ? { lastError } : {}),
      };
    });
  }

  /** The messages of one queue, oldest first. */
  messages(queue: string): MessageSummary[] {
    if (!isQueueName(queue)) throw new QueueCommandError(404, `no queue named ${queue}`);
    return this.store
      .all()
      .filter((s) => s.queue === queue)
      .sort((a, b) => a.message.envelope.receivedAt - b.message.envelope.receivedAt)
      .map((s) => this.summary(s));
  }

  /** One message in full: its summary and its stored record. */
  show(id: string): MessageSummary & { record: QueuedMessage } {
    const s = this.store.get(id);
    if (!s) throw new QueueCommandError(404, `no queued message ${id}`);
    return { ...this.summary(s), record: s.message };
  }

  /** Count, oldest age and next scheduled retry of each queue state, for the queue gauges. */
  stats(): Record<string, TransportQueueStats> {
    const now = this.clock.now();
    const stats: Record<string, TransportQueueStats> = {};
    for (const q of QUEUE_STATES) stats[q] = { count: 0 };
    // By state: one label per destination domain would grow without bound.
    for (const s of this.store.all()) {
      const q = (stats[queueState(s.queue)] ??= { count: 0 });
      const m = s.message;
      q.count++;
      const age = Math.max(0, (now - m.envelope.receivedAt) / 1000);
      if (q.oldestAgeSeconds === undefined || age > q.oldestAgeSeconds) q.oldestAgeSeconds = age;
      // A retry scheduled, not one made due at once (0) by the administrator.
      if (m.attempts > 0 && m.nextAttemptAt > 0 && (q.nextRetryAt === undefined || m.nextAttemptAt < q.nextRetryAt)) q.nextRetryAt = m.nextAttemptAt;
    }
    return stats;
  }

  private summary(s: StoredMessage): MessageSummary {
    const m = s.message;
    const pending = m.deliveries.filter((d) => d.status === 'pending').map((d) => d.address);
    const frozen = m.frozen === true || isQueueFrozen(this.store, s.queue);
    return {
      id: m.envelope.id,
      queue: s.queue,
      rootId: m.rootId,
      ...(m.messageId ? { messageId: m.messageId } : {}),
      sender: m.envelope.mailFrom,
      recipients: m.kind === 'message' ? m.envelope.recipients.map((r) => r.address) : pending,
      size: m.envelope.size,
      receivedAt: new Date(m.envelope.receivedAt).toISOString(),
      attempts: m.attempts,
      // Due at once (0, as after `queue retry`) reads as now: frozen, it goes as soon as it is unfrozen.
      ...(m.attempts > 0 ? { nextAttempt: new Date(Math.max(m.nextAttemptAt, this.clock.now())).toISOString() } : {}),
      frozen,
      status: frozen ? FROZEN_STATUS : (m.lastError ?? 'ready'),
    };
  }
}

function queueOrder(a: string, b: string): number {
  const rank = (q: string): number => QUEUE_STATES.indexOf(queueState(q));
  return rank(a) - rank(b) || a.localeCompare(b);
}
