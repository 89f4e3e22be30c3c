import { domainOf } from '../net/domain.js';
import { fsyncDir } from '../storage/durable-write.js';
import type { DeliveryReport } from './delivery-report.js';
import { formatResult } from './delivery-result.js';
import type { Expiry } from './expiry.js';
import { deliverLocal, LocalDeliveryError, localDeliveryHeaders } from './local-delivery.js';
import type { QueueContext } from './queue-context.js';
import { queueState, remoteQueue, type Delivery, type QueuedMessage } from './queue-store.js';
import type { RemoteDelivery } from './remote-delivery.js';
import { failedRetryAt, isDelayNotifyDue, notifyAllows, retryDelayMs } from './retry-schedule.js';
import { FORWARD_UNRESOLVED_CONNECTOR, type Router } from './router.js';
import type { Settling } from './settling.js';
import type { RecipientResult } from './types.js';

/** Where the copies of a categorized message go. */
export interface DeliveryTargets {
  router: Router;
  remote: RemoteDelivery;
  mailboxRoot: string;
}

/** A local copy renamed into its Maildir's `new/`: durable once `newDir` (if any) is synced, then tracked. */
export interface PlacedCopy {
  address: string;
  /** The `new/` whose sync the copy still waits for. */
  newDir?: string;
  ageSeconds: number;
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
    private readonly settling: Settling,
  ) {}

  /** One attempt at every pending local copy; each success is recorded at once so a crash repeats only the rest. */
  async local(m: QueuedMessage): Promise<void> {
    const { store, metrics } = this.ctx;
    const deliveries = m.deliveries.map((d) => ({ ...d }));
    const placed: PlacedCopy[] = [];
    for (const d of deliveries) {
      if (d.status !== 'pending') continue;
      try {
        placed.push(await this.deliverCopy(m, d));
        if (deliveries.some((x) => x.status === 'pending')) {
          // The record is about to say "delivered": the copy must be durable first.
          await this.makeDurable(m, placed.splice(0));
          await store.update({ ...m, deliveries });
        }
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
    await this.afterAttempt({ ...m, deliveries }, 'deferred', undefined, placed);
  }

  /**
   * A fresh local part of one copy, delivered before it is ever queued: the copy when it is in the
   * Maildir and reported, so the part's own envelope file (a write, two fsyncs, a rename and an unlink)
   * is never needed; the caller removes the message it came from with `settle`. Undefined, with nothing
   * recorded, when it was not delivered: the caller queues the part, and the attempt there decides what
   * the failure means. The message it came from is still queued meanwhile, so a crash repeats the
   * delivery (found in the Maildir by its part id, as for a queued part caught mid-delivery).
   */
  async localBeforeQueueing(part: QueuedMessage): Promise<PlacedCopy | undefined> {
    const d = part.deliveries.length === 1 ? { ...part.deliveries[0]! } : undefined;
    if (!d || d.status !== 'pending') return undefined;
    let placed: PlacedCopy;
    try {
      placed = await this.deliverCopy(part, d);
    } catch (err) {
      if (err instanceof LocalDeliveryError) return undefined;
      throw err;
    }
    await this.reports.report({ ...part, deliveries: [d] });
    return placed;
  }

  /**
   * The one copy of a received message, delivered before its 250 from the content in memory (nothing of
   * it queued): the copy once its `new/` is synced (now, sharing a sync with concurrent deliveries into
   * that Maildir), to be tracked with `delivered`; undefined, with nothing recorded, when it did not
   * make it, and the caller queues the message. A file renamed into `new/` whose sync failed stays
   * there, so the message's delivery from the queue looks for it first (`mayBeDelivered`).
   */
  async atReceipt(part: QueuedMessage, content: Buffer): Promise<PlacedCopy | undefined> {
    const d = { ...part.deliveries[0]! };
    let placed: PlacedCopy;
    try {
      placed = await this.deliverCopy(part, d, content);
    } catch (err) {
      if (err instanceof LocalDeliveryError) return undefined;
      throw err;
    }
    if (placed.newDir === undefined) return placed;
    try {
      await fsyncDir(placed.newDir);
    } catch (err) {
      this.settling.mayHaveLeft(part.rootId);
      this.ctx.onError(err as Error, `syncing the Maildir of ${part.envelope.id} at receipt`);
      return undefined;
    }
    return placed;
  }

  /**
   * Removes record `id` once the copies of `m` in `placed` are durable, and tracks their delivery then.
   * With no `new/` sync owed it is done before this resolves; otherwise the worker goes on at once and
   * the rest waits for the Maildirs' batched syncs (`settling.ts`), the record held busy meanwhile.
   */
  async settle(id: string, m: QueuedMessage, placed: PlacedCopy[]): Promise<void> {
    const { store } = this.ctx;
    const dirs = [...new Set(placed.flatMap((p) => (p.newDir ? [p.newDir] : [])))];
    if (dirs.length === 0) {
      this.delivered(m, placed);
      await store.remove(id);
      return;
    }
    this.settling.after(
      id,
      m.rootId,
      dirs,
      async () => {
        this.delivered(m, placed);
        await store.remove(id);
      },
      async (err) => {
        // Tried again later; the repeated delivery finds the file already there (`mayBeDelivered`).
        this.ctx.onError(err, `syncing the Maildir of ${id}`);
        const current = store.get(id);
        if (!current) return;
        const { rules, clock } = this.ctx;
        await store.update({ ...current.message, lastError: `4.3.0 ${err.message}`, attempts: current.message.attempts + 1, nextAttemptAt: failedRetryAt(clock.now(), rules.transport.retry) });
      },
    );
  }

  /** Delivers one local copy and records it in `d` (tracked once durable: `makeDurable`, `settle`); throws LocalDeliveryError. */
  private async deliverCopy(m: QueuedMessage, d: Delivery, held?: Buffer): Promise<PlacedCopy> {
    const content = held ?? this.ctx.store.recentContent(m.contentId) ?? (await this.ctx.store.contentFile(m.contentId));
    const newDir = await deliverLocal(this.targets.mailboxRoot, d.address, content, localDeliveryHeaders(m.envelope.mailFrom, d.address), {
      fsync: this.ctx.rules.transport.fsync,
      queueId: m.envelope.id,
      mayBeDelivered: this.ctx.store.recovered(m.rootId) || this.settling.mayBeDelivered(m.rootId),
      deferNewSync: true,
      ...(d.quotaBytes !== undefined ? { quotaBytes: d.quotaBytes } : {}),
    });
    d.status = 'delivered';
    d.result = { address: d.address, outcome: 'delivered', code: 250, enhanced: '2.0.0', text: `Delivered to the mailbox of ${d.address}` };
    return { address: d.address, ageSeconds: this.ageSeconds(m), ...(newDir ? { newDir } : {}) };
  }

  /** Syncs the `new/` of each copy now and tracks them: before a record that goes on says they were delivered. */
  private async makeDurable(m: QueuedMessage, placed: PlacedCopy[]): Promise<void> {
    await Promise.all([...new Set(placed.flatMap((p) => (p.newDir ? [p.newDir] : [])))].map((dir) => fsyncDir(dir)));
    this.delivered(m, placed);
  }

  /** The tracking line and metric of copies now durable in their Maildirs. */
  delivered(m: QueuedMessage, placed: PlacedCopy[]): void {
    for (const p of placed) {
      this.ctx.track('delivered', m, [p.address], '250 2.0.0 delivered to Maildir');
      this.ctx.metrics?.transportDelivery('delivered', p.ageSeconds);
    }
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
  private async afterAttempt(m: QueuedMessage, retryQueue: string, retryAt?: number, placed: PlacedCopy[] = []): Promise<void> {
    const { store, clock, rules } = this.ctx;
    const retry = rules.transport.retry;
    const now = clock.now();
    const pending = m.deliveries.filter((d) => d.status === 'pending');
    if (pending.length === 0) {
      await this.reports.report(m);
      await this.settle(m.envelope.id, m, placed);
      return;
    }
    // The record goes on (expired with its NDR, or rescheduled) saying which copies were delivered.
    await this.makeDurable(m, placed);
    if (this.expiry.isDue(m)) {
      await this.expiry.expire(m);
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
