import { domainOf } from '../net/domain.js';
import type { DeliveryReport } from './delivery-report.js';
import { formatResult } from './delivery-result.js';
import type { Expiry } from './expiry.js';
import { deliverLocal, LocalDeliveryError, localDeliveryHeaders } from './local-delivery.js';
import type { QueueContext } from './queue-context.js';
import { queueState, remoteQueue, type Delivery, type QueuedMessage } from './queue-store.js';
import type { RemoteDelivery } from './remote-delivery.js';
import { isDelayNotifyDue, notifyAllows, retryDelayMs } from './retry-schedule.js';
import { FORWARD_UNRESOLVED_CONNECTOR, type Router } from './router.js';
import type { RecipientResult } from './types.js';

/** Where the copies of a categorized message go. */
export interface DeliveryTargets {
  router: Router;
  remote: RemoteDelivery;
  mailboxRoot: string;
}

/**
 * One delivery attempt at a local or remote part, and what follows it: the part is reported and
 * removed once every copy has ended, expires, or waits on the retry schedule (local ones in
 * `deferred`, routeless ones in `unreachable`), with a delay DSN once after `delayNotifyHours`.
 */
export class DeliveryAttempt {
  constructor(
    private readonly ctx: QueueContext,
    private readonly targets: DeliveryTargets,
    private readonly reports: DeliveryReport,
    private readonly expiry: Expiry,
  ) {}

  /** One attempt at every pending local copy; each success is recorded at once so a crash repeats only the rest. */
  async local(m: QueuedMessage): Promise<void> {
    const { store, metrics } = this.ctx;
    const deliveries = m.deliveries.map((d) => ({ ...d }));
    for (const d of deliveries) {
      if (d.status !== 'pending') continue;
      try {
        await this.deliverCopy(m, d);
        if (deliveries.some((x) => x.status === 'pending')) await store.update({ ...m, deliveries });
      } catch (err) {
        if (!(err instanceof LocalDeliveryError)) throw err;
        const { code, enhanced } = err.reply;
        const permanent = code >= 500;
        d.result = { address: d.address, outcome: permanent ? 'failed' : 'deferred', code, enhanced, text: err.message };
        if (permanent) {
          d.status = 'failed';
        } else {
          this.ctx.track('deferred', m, [d.address], formatResult(d.result));
          metrics?.transportDelivery('deferred');
        }
      }
    }
    await this.afterAttempt({ ...m, deliveries }, 'deferred');
  }

  /**
   * A fresh local part of one copy, delivered before it is ever queued: true when it is in the Maildir
   * and reported, so the part's own envelope file (a write, two fsyncs, a rename and an unlink) is never
   * needed. False, with nothing recorded, when it was not delivered: the caller queues the part, and the
   * attempt there decides what the failure means. The message it came from is still queued meanwhile, so
   * a crash repeats the delivery (at-least-once, as for a queued part caught mid-delivery).
   */
  async localBeforeQueueing(part: QueuedMessage): Promise<boolean> {
    const d = part.deliveries.length === 1 ? { ...part.deliveries[0]! } : undefined;
    if (!d || d.status !== 'pending') return false;
    try {
      await this.deliverCopy(part, d);
    } catch (err) {
      if (err instanceof LocalDeliveryError) return false;
      throw err;
    }
    await this.reports.report({ ...part, deliveries: [d] });
    return true;
  }

  /** Delivers one local copy and records it in `d`; throws LocalDeliveryError. */
  private async deliverCopy(m: QueuedMessage, d: Delivery): Promise<void> {
    const content = this.ctx.store.recentContent(m.contentId) ?? (await this.ctx.store.contentFile(m.contentId));
    await deliverLocal(this.targets.mailboxRoot, d.address, content, localDeliveryHeaders(m.envelope.mailFrom, d.address), {
      fsync: this.ctx.rules.transport.fsync,
      queueId: m.envelope.id,
      mayBeDelivered: this.ctx.store.recovered(m.rootId),
      ...(d.quotaBytes !== undefined ? { quotaBytes: d.quotaBytes } : {}),
    });
    d.status = 'delivered';
    d.result = { address: d.address, outcome: 'delivered', code: 250, enhanced: '2.0.0', text: `Delivered to the mailbox of ${d.address}` };
    this.ctx.track('delivered', m, [d.address], '250 2.0.0 delivered to Maildir');
    this.ctx.metrics?.transportDelivery('delivered', this.ageSeconds(m));
  }

  /**
   * One attempt at the pending remote copies, by whatever route the router gives now. A smart-host
   * connector that answers nobody is marked down until its own retry time, and the copies go at once
   * by the next route; when every route is down they wait in `unreachable` until the first is back.
   */
  async remote(m: QueuedMessage): Promise<void> {
    const { router, remote } = this.targets;
    const domain = m.domain ?? domainOf(m.deliveries[0]?.address ?? '');
    const deliveries = m.deliveries.map((d) => ({ ...d }));
    const tried = new Set<string>();
    for (let route = router.route(domain); ; route = router.route(domain)) {
      const pending = deliveries.filter((d) => d.status === 'pending');
      if (route.kind === 'none' && route.result.outcome === 'deferred') {
        // A route tried in this attempt left a better reason (its hosts' answers) than "connectors down".
        if (tried.size === 0) {
          for (const d of pending) d.result = { ...route.result, address: d.address };
          this.ctx.track('deferred', m, pending.map((d) => d.address), formatResult(route.result));
        }
        await this.afterAttempt({ ...m, deliveries }, 'unreachable', router.backAt(domain));
        return;
      }
      if (route.kind !== 'none' && route.connector !== null && tried.has(route.connector)) break;
      const results = await remote.deliver(route, m.envelope, pending.map((d) => d.outbound ?? d.recipient), this.ctx.store.contentPath(m.contentId));
      this.recordRemoteResults(m, pending, results);
      if (route.kind === 'none' || route.connector === null || route.connector === FORWARD_UNRESOLVED_CONNECTOR) break;
      const unanswered = route.kind === 'smarthost' && results.length > 0 && results.every((r) => r.enhanced === '4.4.1');
      if (!unanswered) {
        if (results.some((r) => r.outcome === 'delivered')) router.markUp(route.connector);
        break;
      }
      router.markFailed(route.connector);
      tried.add(route.connector);
    }
    await this.afterAttempt({ ...m, deliveries }, remoteQueue(domain));
  }

  /** Takes one attempt's per-recipient results into the pending copies (matched by the exact address sent). */
  private recordRemoteResults(m: QueuedMessage, pending: Delivery[], results: RecipientResult[]): void {
    for (const [i, d] of pending.entries()) {
      const sent = (d.outbound ?? d.recipient).address;
      const r: RecipientResult = results.find((x) => x.address === sent) ?? results[i] ?? {
        address: d.address, outcome: 'deferred', code: 451, enhanced: '4.3.0', text: 'No result from remote delivery',
      };
      d.result = { ...r, address: d.address };
      const reason = formatResult(r);
      if (r.outcome === 'delivered') {
        d.status = 'delivered';
        this.ctx.track('transferred', m, [d.address], `${reason}${r.remoteMta ? ` (${r.remoteMta})` : ''}`);
        this.ctx.metrics?.transportDelivery('transferred', this.ageSeconds(m));
      } else if (r.outcome === 'failed') {
        d.status = 'failed';
      } else {
        this.ctx.track('deferred', m, [d.address], reason);
        this.ctx.metrics?.transportDelivery('deferred');
      }
    }
  }

  /**
   * After an attempt: finished → report and remove; else expire (4.4.7), send the delay DSN once, or
   * schedule the retry (on the retry schedule, or at `retryAt` when the caller knows better).
   */
  private async afterAttempt(m: QueuedMessage, retryQueue: string, retryAt?: number): Promise<void> {
    const { store, clock, rules } = this.ctx;
    const retry = rules.transport.retry;
    const now = clock.now();
    const pending = m.deliveries.filter((d) => d.status === 'pending');
    if (pending.length > 0 && this.expiry.isDue(m)) {
      await this.expiry.expire(m);
      return;
    }
    if (pending.length === 0) {
      await this.reports.report(m);
      await store.remove(m.envelope.id);
      return;
    }
    if (isDelayNotifyDue(m.envelope.receivedAt, now, retry)) {
      const late = pending.filter((d) => !d.delayNotified);
      if (late.length > 0) {
        await this.reports.sendDsn(m, late.filter((d) => notifyAllows(d.recipient, 'DELAY')), 'delayed');
        for (const d of late) d.delayNotified = true;
      }
    }
    await this.reports.report(m);
    const attempts = m.attempts + 1;
    const first = pending[0]?.result;
    const next: QueuedMessage = {
      ...m,
      attempts,
      nextAttemptAt: retryAt ?? now + retryDelayMs(attempts, retry),
      ...(first ? { lastError: formatResult(first) } : {}),
    };
    this.ctx.metrics?.transportRetry(queueState(retryQueue));
    await store.move(next, retryQueue);
  }

  private ageSeconds(m: QueuedMessage): number {
    return Math.max(0, (this.ctx.clock.now() - m.envelope.receivedAt) / 1000);
  }
}
