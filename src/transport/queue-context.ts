import type { Rules } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../runtime/clock.js';
import type { QueuedMessage, QueueStore } from './queue-store.js';
import type { TrackingEventName, TrackingLog } from './tracking-log.js';

/** What every part of the queue manager works with. */
export interface QueueContext {
  rules: Rules;
  store: QueueStore;
  clock: Clock;
  metrics?: Metrics;
  /** Reports an error that was handled (the message is retried) but must be seen. */
  onError(err: Error, context: string): void;
  /** Writes one tracking-log line about a message. */
  track(event: TrackingEventName, m: QueuedMessage, recipients: string[], reason?: string): void;
}

/** The context the queue manager's parts share, writing its tracking lines to `tracking`. */
export function queueContext(o: Omit<QueueContext, 'track'> & { tracking: TrackingLog }): QueueContext {
  return {
    rules: o.rules,
    store: o.store,
    clock: o.clock,
    metrics: o.metrics,
    onError: o.onError,
    track(event, m, recipients, reason) {
      const e = m.envelope;
      o.tracking.log(
        {
          event,
          id: m.rootId,
          ...(e.id !== m.rootId ? { part: e.id } : {}),
          ...(m.messageId ? { messageId: m.messageId } : {}),
          sender: e.mailFrom,
          recipients,
          size: e.size,
          ...(e.client ? { clientIp: e.client.ip } : {}),
          ...(reason !== undefined ? { reason } : {}),
        },
        o.clock.now(),
        (err) => o.onError(err, 'tracking log'),
      );
    },
  };
}
