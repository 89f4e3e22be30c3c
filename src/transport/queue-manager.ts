import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { BadmailWriter } from '../badmail/badmail-writer.js';
import type { Rules } from '../config/schema.js';
import type { Metrics, TransportQueueStats } from '../observability/metrics.js';
import type { Clock } from '../runtime/clock.js';
import { domainOf } from '../net/domain.js';
import { categorize, countHops, outboundRecipient } from './categorizer.js';
import type { DirectoryModel } from '../directory/directory-model.js';
import { buildDsn, type DsnRecipient } from './dsn.js';
import { deliverLocal, LocalDeliveryError, localDeliveryHeaders } from './local-delivery.js';
import {
  newQueueId,
  queueState,
  QUEUE_STATES,
  remoteQueue,
  type Delivery,
  type QueuedMessage,
  type QueueStore,
  type StoredMessage,
} from './queue-store.js';
import type { RemoteDelivery } from './remote-delivery.js';
import { failedRetryAt, isDelayNotifyDue, isExpired, notifyAllows, retryDelayMs } from './retry-schedule.js';
import { FORWARD_UNRESOLVED_CONNECTOR, type Router } from './router.js';
import type { TrackingEventName, TrackingLog } from './tracking-log.js';
import type { RecipientResult } from './types.js';

/** What the queue manager works with. */
export interface QueueManagerOptions {
  rules: Rules;
  store: QueueStore;
  clock: Clock;
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

/** One queue as the queue viewer shows it. */
export interface QueueSummary {
  name: string;
  state: 'active' | 'ready' | 'retry' | 'frozen';
  count: number;
  /** ISO time the oldest message was received. */
  oldest?: string;
  /** ISO time of the next attempt of a message waiting to be retried. */
  nextRetry?: string;
  lastError?: string;
}

/** One message as the queue viewer lists it. */
export interface MessageSummary {
  id: string;
  queue: string;
  rootId: string;
  messageId?: string;
  sender: string;
  /** The addresses still to be delivered (or every envelope recipient before categorization). */
  recipients: string[];
  size: number;
  receivedAt: string;
  attempts: number;
  nextAttempt?: string;
  frozen: boolean;
  /** `4.3.2 ...` when frozen, else the last error, else `ready`. */
  status: string;
}

/** Where the report of a deleted message's undelivered recipients went. */
export type DeleteNotice = 'ndr' | 'badmail' | 'none';

/** A queue-viewer request that cannot be done; the admin interface answers it with `status`. */
export class QueueCommandError extends Error {
  constructor(
    readonly status: 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

const FROZEN_STATUS = '4.3.2 Frozen by the administrator';
/** Records worked on at once: enough to overlap slow remote hosts; the remote delivery limits connections itself. */
const WORKERS = 8;
const DELETED_RESULT = { outcome: 'failed' as const, code: 550, enhanced: '5.0.0', text: 'Message deleted from the queue by the administrator' };

/** Whether a name is a queue (a state, or `remote-delivery/<destination>`), as opposed to a message id. */
export function isQueueName(name: string): boolean {
  return (QUEUE_STATES as readonly string[]).includes(name) || /^remote-delivery\/[^/]+$/.test(name);
}

/**
 * Moves messages through the queues: pre-submission → awaiting directory lookup (categorize, expand)
 * → local delivery / remote delivery per destination / failed; temporary failures wait on the retry
 * schedule (local ones in `deferred`, routeless ones in `unreachable`), a delay DSN goes out once after
 * `delayNotifyHours`, an expiry NDR (4.4.7) after `expireHours`; DSNs are queued as new messages from
 * <> in `dsn-pending`, and a bounce that fails goes to Badmail. Time comes only from the clock, so
 * `runDue` after moving a test clock does exactly what the schedule says.
 */
export class QueueManager {
  private readonly busy = new Map<string, Promise<void>>();
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly retry: Rules['transport']['retry'];

  constructor(private readonly o: QueueManagerOptions) {
    this.retry = o.rules.transport.retry;
  }

  /** Starts looking for due work every `pollMs` (and at once). */
  start(pollMs = 1000): void {
    this.timer = setInterval(() => this.kick(), pollMs);
    this.kick();
  }

  /** Stops the timer and waits for the work in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
  }

  /** Asks for a run soon (new mail, an administrator's retry); errors are reported, not thrown. */
  kick(): void {
    this.runDue().catch((err: unknown) => this.o.onError(err as Error, 'queue run'));
  }

  /** Works on everything due now, including what that work makes due; resolves when nothing due is left. */
  runDue(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.drain();
      } while (this.again);
    })().finally(() => {
      this.running = null;
      this.publishQueueStats();
    });
    return this.running;
  }

  private isDue(s: StoredMessage, now: number): boolean {
    const m = s.message;
    return !m.frozen && !this.queueFrozen(s.queue) && m.nextAttemptAt <= now && !this.busy.has(m.envelope.id);
  }

  private queueFrozen(queue: string): boolean {
    return this.o.store.isFrozen(queue) || this.o.store.isFrozen(queueState(queue));
  }

  private async drain(): Promise<void> {
    // A record is worked on once per queue per run, so a run always ends.
    const done = new Set<string>();
    const pick = (): StoredMessage | undefined => {
      const now = this.o.clock.now();
      return this.o.store.all().find((s) => !done.has(`${s.message.envelope.id}@${s.queue}`) && this.isDue(s, now));
    };
    const worker = async (): Promise<void> => {
      for (let s = pick(); s; s = pick()) {
        done.add(`${s.message.envelope.id}@${s.queue}`);
        await this.processOne(s);
      }
    };
    do {
      await Promise.all(Array.from({ length: WORKERS }, worker));
    } while (pick());
  }

  private processOne(s: StoredMessage): Promise<void> {
    const id = s.message.envelope.id;
    const work = this.process(s)
      .catch(async (err: unknown) => {
        this.o.onError(err as Error, `processing ${id} in ${s.queue}`);
        const lastError = `4.3.0 ${(err as Error).message}`;
        let current = this.o.store.get(id);
        if (current && isExpired(current.message.envelope.receivedAt, this.o.clock.now(), this.retry)) {
          try {
            await this.expire(current.message, lastError);
            return;
          } catch (e) {
            this.o.onError(e as Error, `expiring ${id}`);
          }
          current = this.o.store.get(id);
        }
        if (!current) return;
        // Unexpected trouble (a disk error, say) is retried like a failed message until it expires, never dropped.
        const m = { ...current.message, lastError, attempts: current.message.attempts + 1, nextAttemptAt: failedRetryAt(this.o.clock.now(), this.retry) };
        await this.o.store.update(m).catch((e: unknown) => this.o.onError(e as Error, `recording the failure of ${id}`));
      })
      .finally(() => this.busy.delete(id));
    this.busy.set(id, work);
    return work;
  }

  private async process(s: StoredMessage): Promise<void> {
    const m = s.message;
    switch (queueState(s.queue)) {
      case 'pre-submission':
        await this.o.store.move({ ...m, nextAttemptAt: 0 }, 'awaiting-directory-lookup');
        this.track('submitted', m, m.envelope.recipients.map((r) => r.address));
        return;
      case 'dsn-pending':
      case 'failed-retry':
        await this.o.store.move({ ...m, nextAttemptAt: 0 }, s.queue === 'dsn-pending' ? 'pre-submission' : 'awaiting-directory-lookup');
        return;
      case 'awaiting-directory-lookup':
        await this.categorizeMessage(m);
        return;
      case 'local-delivery':
      case 'deferred':
        await this.deliverLocalPart(m);
        return;
      case 'remote-delivery':
      case 'unreachable':
        await this.deliverRemotePart(m);
        return;
    }
  }

  /** Resolves the recipients and splits the message into a local part and one remote part per domain. */
  private async categorizeMessage(m: QueuedMessage): Promise<void> {
    const { rules, store } = this.o;
    let header: string;
    try {
      header = await readHeaderBlock(store.contentPath(m.contentId));
    } catch (err) {
      const lastError = `4.3.0 Message content unreadable: ${(err as Error).message}`;
      if (isExpired(m.envelope.receivedAt, this.o.clock.now(), this.retry)) {
        this.o.onError(err as Error, `reading the content of ${m.envelope.id}`);
        await this.expire(m, lastError);
        return;
      }
      await store.move({ ...m, lastError, attempts: m.attempts + 1, nextAttemptAt: failedRetryAt(this.o.clock.now(), this.retry) }, 'failed-retry');
      this.o.metrics?.transportRetry('failed-retry');
      return;
    }
    // The hop count the message arrived with: our own Received: field (on received mail, which `sentSize` marks) is not one.
    const ownField = m.envelope.sentSize !== undefined ? 1 : 0;
    const c = categorize(m.envelope, { hopCount: countHops(header) - ownField }, this.o.directory(), rules);
    for (const e of c.expansions) this.track('expanded', m, e.members, `group ${e.group} expanded to ${e.members.length} member(s)`);

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
    for (const [i, p] of parts.entries()) {
      const id = `${m.envelope.id}-${i + 1}`;
      if (store.get(id)) continue;
      await store.add(p.queue, {
        envelope: { ...m.envelope, id, recipients: p.deliveries.map((d) => d.recipient) },
        contentId: m.contentId,
        rootId: m.rootId,
        ...(m.messageId ? { messageId: m.messageId } : {}),
        kind: p.kind,
        ...(p.domain ? { domain: p.domain } : {}),
        deliveries: p.deliveries,
        attempts: 0,
        nextAttemptAt: 0,
      });
    }
    const failed: Delivery[] = c.failed.map((f) => ({ address: f.result.address, recipient: f.recipient, status: 'failed', result: f.result }));
    await this.report({ ...m, deliveries: failed });
    await store.remove(m.envelope.id);
  }

  /** One attempt at every pending local copy; each success is recorded at once so a crash repeats only the rest. */
  private async deliverLocalPart(m: QueuedMessage): Promise<void> {
    const { store } = this.o;
    const contentPath = store.contentPath(m.contentId);
    const fsync = this.o.rules.transport.fsync;
    const deliveries = m.deliveries.map((d) => ({ ...d }));
    for (const d of deliveries) {
      if (d.status !== 'pending') continue;
      try {
        await deliverLocal(this.o.mailboxRoot, d.address, contentPath, localDeliveryHeaders(m.envelope.mailFrom, d.address), {
          fsync,
          ...(d.quotaBytes !== undefined ? { quotaBytes: d.quotaBytes } : {}),
        });
        d.status = 'delivered';
        d.result = { address: d.address, outcome: 'delivered', code: 250, enhanced: '2.0.0', text: `Delivered to the mailbox of ${d.address}` };
        this.track('delivered', m, [d.address], '250 2.0.0 delivered to Maildir');
        this.o.metrics?.transportDelivery('delivered', this.ageSeconds(m));
        if (deliveries.some((x) => x.status === 'pending')) await store.update({ ...m, deliveries });
      } catch (err) {
        if (!(err instanceof LocalDeliveryError)) throw err;
        const { code, enhanced } = err.reply;
        const permanent = code >= 500;
        d.result = { address: d.address, outcome: permanent ? 'failed' : 'deferred', code, enhanced, text: err.message };
        if (permanent) {
          d.status = 'failed';
        } else {
          this.track('deferred', m, [d.address], `${code} ${enhanced} ${err.message}`);
          this.o.metrics?.transportDelivery('deferred');
        }
      }
    }
    await this.afterAttempt({ ...m, deliveries }, 'deferred');
  }

  /**
   * One attempt at the pending remote copies, by whatever route the router gives now. A smart-host
   * connector that answers nobody is marked down until its own retry time, and the copies go at once
   * by the next route; when every route is down they wait in `unreachable` until the first is back.
   */
  private async deliverRemotePart(m: QueuedMessage): Promise<void> {
    const { router } = this.o;
    const domain = m.domain ?? domainOf(m.deliveries[0]?.address ?? '');
    const deliveries = m.deliveries.map((d) => ({ ...d }));
    const tried = new Set<string>();
    for (let route = router.route(domain); ; route = router.route(domain)) {
      const pending = deliveries.filter((d) => d.status === 'pending');
      if (route.kind === 'none' && route.result.outcome === 'deferred') {
        // A route tried in this attempt left a better reason (its hosts' answers) than "connectors down".
        if (tried.size === 0) {
          for (const d of pending) d.result = { ...route.result, address: d.address };
          this.track('deferred', m, pending.map((d) => d.address), resultText(route.result));
        }
        await this.afterAttempt({ ...m, deliveries }, 'unreachable', router.backAt(domain));
        return;
      }
      if (route.kind !== 'none' && route.connector !== null && tried.has(route.connector)) break;
      const results = await this.o.remote.deliver(route, m.envelope, pending.map((d) => d.outbound ?? d.recipient), this.o.store.contentPath(m.contentId));
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
      const reason = resultText(r);
      if (r.outcome === 'delivered') {
        d.status = 'delivered';
        this.track('transferred', m, [d.address], `${reason}${r.remoteMta ? ` (${r.remoteMta})` : ''}`);
        this.o.metrics?.transportDelivery('transferred', this.ageSeconds(m));
      } else if (r.outcome === 'failed') {
        d.status = 'failed';
      } else {
        this.track('deferred', m, [d.address], reason);
        this.o.metrics?.transportDelivery('deferred');
      }
    }
  }

  /**
   * After an attempt: finished → report and remove; else expire (4.4.7), send the delay DSN once, or
   * schedule the retry (on the retry schedule, or at `retryAt` when the caller knows better).
   */
  private async afterAttempt(m: QueuedMessage, retryQueue: string, retryAt?: number): Promise<void> {
    const now = this.o.clock.now();
    let pending = m.deliveries.filter((d) => d.status === 'pending');
    if (pending.length > 0 && isExpired(m.envelope.receivedAt, now, this.retry)) {
      this.failExpired(pending);
      pending = [];
    }
    if (pending.length === 0) {
      await this.report(m);
      await this.o.store.remove(m.envelope.id);
      return;
    }
    if (isDelayNotifyDue(m.envelope.receivedAt, now, this.retry)) {
      const late = pending.filter((d) => !d.delayNotified);
      if (late.length > 0) {
        await this.sendDsn(m, late.filter((d) => notifyAllows(d.recipient, 'DELAY')), 'delayed');
        for (const d of late) d.delayNotified = true;
      }
    }
    await this.report(m);
    const attempts = m.attempts + 1;
    const first = pending[0]?.result;
    const next: QueuedMessage = {
      ...m,
      attempts,
      nextAttemptAt: retryAt ?? now + retryDelayMs(attempts, this.retry),
      ...(first ? { lastError: `${first.code ?? ''} ${first.enhanced} ${first.text}`.trim() } : {}),
    };
    this.o.metrics?.transportRetry(queueState(retryQueue));
    await this.o.store.move(next, retryQueue);
  }

  /** Fails copies still pending at the expiration time-out with 4.4.7, naming the last error (`lastError`, else each copy's last result). */
  private failExpired(pending: Delivery[], lastError?: string): void {
    for (const d of pending) {
      const last = lastError ?? (d.result ? `${d.result.code ?? ''} ${d.result.enhanced} ${d.result.text}`.trim() : undefined);
      d.status = 'failed';
      d.result = {
        address: d.address, outcome: 'failed', enhanced: '4.4.7',
        text: `Message expired: not delivered within ${this.retry.expireHours} hours${last ? ` (last error: ${last})` : ''}`,
        ...(d.result?.remoteMta ? { remoteMta: d.result.remoteMta } : {}),
      };
    }
  }

  /**
   * Ends a record that keeps failing without an attempt (unreadable content, a disk error) once it has
   * expired: fails its pending copies 4.4.7, reports them, and removes it. A report needs the content,
   * so when that is unreadable the failure is only logged: no retry could ever send it.
   */
  private async expire(m: QueuedMessage, lastError: string): Promise<void> {
    const deliveries = copiesOf(m);
    this.failExpired(deliveries.filter((d) => d.status === 'pending'), lastError);
    try {
      await this.report({ ...m, deliveries });
    } catch (err) {
      if (await isReadable(this.o.store.contentPath(m.contentId))) throw err;
      this.o.onError(err as Error, `reporting the expiry of ${m.envelope.id}: content unreadable, removed unreported`);
    }
    await this.o.store.remove(m.envelope.id);
  }

  /**
   * Reports every copy that ended and was not yet reported: failures by NDR (to Badmail for a bounce,
   * which is never bounced), successes when NOTIFY=SUCCESS asked for one: `delivered` for local
   * delivery, `relayed` for a next hop that does not offer DSN (RFC 3461 4.2.2; one that does got the
   * NOTIFY and reports itself). Marks them reported in `m` (the caller saves).
   */
  private async report(m: QueuedMessage): Promise<void> {
    const ended = m.deliveries.filter((d) => d.status !== 'pending' && !d.reported);
    if (ended.length === 0) return;
    const failed = ended.filter((d) => d.status === 'failed');
    for (const d of failed) {
      this.track('failed', m, [d.address], resultText(d.result));
      this.o.metrics?.transportDelivery('failed');
    }
    const isBounce = m.envelope.isDsn === true || m.envelope.mailFrom === '';
    if (failed.length > 0 && isBounce) {
      await this.o.badmail.write(createReadStream(this.o.store.contentPath(m.contentId)), {
        id: m.envelope.id,
        time: new Date(this.o.clock.now()).toISOString(),
        source: 'undeliverable-bounce',
        sender: m.envelope.mailFrom,
        recipients: failed.map((d) => d.address),
        reason: failed.map((d) => `${d.address}: ${resultText(d.result)}`).join('; '),
        envelope: m.envelope,
        rootId: m.rootId,
      });
      this.track('badmail', m, failed.map((d) => d.address), `undeliverable bounce: ${failed.map((d) => resultText(d.result)).join('; ')}`);
      this.o.metrics?.transportDsn('badmail');
    } else if (failed.length > 0) {
      await this.sendDsn(m, failed.filter((d) => notifyAllows(d.recipient, 'FAILURE')), 'failed');
    }
    if (!isBounce) {
      const successes = ended.filter((d) => d.status === 'delivered' && notifyAllows(d.recipient, 'SUCCESS'));
      if (m.kind === 'local') await this.sendDsn(m, successes, 'delivered');
      else await this.sendDsn(m, successes.filter((d) => d.result?.nextHopDsn === false), 'relayed');
    }
    for (const d of ended) d.reported = true;
  }

  /** Queues one DSN about some copies of a message, as a new message from <> in `dsn-pending`. */
  private async sendDsn(m: QueuedMessage, about: Delivery[], action: DsnRecipient['action']): Promise<void> {
    if (about.length === 0 || m.envelope.mailFrom === '' || m.envelope.isDsn) return;
    const { rules, store, clock } = this.o;
    const now = clock.now();
    const results: DsnRecipient[] = about.map((d) => {
      const orcpt = d.recipient.orcpt ?? (d.recipient.address.toLowerCase() !== d.address.toLowerCase() ? `rfc822;${d.recipient.address}` : undefined);
      const base: RecipientResult = d.result ?? { address: d.address, outcome: 'deferred', enhanced: '4.0.0', text: 'Not yet delivered' };
      const enhanced = action === 'delayed' && !base.enhanced.startsWith('4') ? '4.0.0' : base.enhanced;
      return { ...base, address: d.address, enhanced, action, ...(orcpt !== undefined ? { orcpt } : {}) };
    });
    const report = await buildDsn({
      reportingMta: rules.hostname,
      original: m.envelope,
      originalContentPath: store.contentPath(m.contentId),
      results,
      from: rules.transport.dsn.from ?? `Mail Delivery System <MAILER-DAEMON@${rules.hostname}>`,
      now: new Date(now),
      ...(action === 'delayed' ? { willRetryUntil: new Date(m.envelope.receivedAt + this.retry.expireHours * 3_600_000) } : {}),
    });
    const id = newQueueId(now);
    const size = await store.writeContent(id, report);
    const recipients = [{ address: m.envelope.mailFrom, notify: ['NEVER' as const] }];
    const copyTo = rules.transport.dsn.copyNdrTo;
    if (action === 'failed' && copyTo !== undefined) recipients.push({ address: copyTo, notify: ['NEVER' as const] });
    const dsnMessageId = /^Message-ID:\s*(\S+)/im.exec(report.toString('latin1'))?.[1];
    await store.add('dsn-pending', {
      envelope: { id, mailFrom: '', recipients, size, receivedAt: now, isDsn: true },
      contentId: id,
      rootId: id,
      ...(dsnMessageId ? { messageId: dsnMessageId } : {}),
      kind: 'message',
      deliveries: [],
      attempts: 0,
      nextAttemptAt: 0,
    });
    this.track('dsn', m, recipients.map((r) => r.address), `${action} DSN ${id} about ${results.map((r) => `${r.address} ${r.enhanced}`).join(', ')}`);
    this.o.metrics?.transportDsn(action);
  }

  private ageSeconds(m: QueuedMessage): number {
    return Math.max(0, (this.o.clock.now() - m.envelope.receivedAt) / 1000);
  }

  /** Writes one tracking-log line about a message. */
  track(event: TrackingEventName, m: QueuedMessage, recipients: string[], reason?: string): void {
    const e = m.envelope;
    this.o.tracking.log(
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
      this.o.clock.now(),
      (err) => this.o.onError(err, 'tracking log'),
    );
  }

  private publishQueueStats(): void {
    if (!this.o.metrics) return;
    const now = this.o.clock.now();
    const stats: Record<string, TransportQueueStats> = {};
    for (const q of QUEUE_STATES) stats[q] = { count: 0 };
    // By state: one label per destination domain would grow without bound.
    for (const s of this.o.store.all()) {
      const q = (stats[queueState(s.queue)] ??= { count: 0 });
      const m = s.message;
      q.count++;
      const age = Math.max(0, (now - m.envelope.receivedAt) / 1000);
      if (q.oldestAgeSeconds === undefined || age > q.oldestAgeSeconds) q.oldestAgeSeconds = age;
      // A retry scheduled, not one made due at once (0) by the administrator.
      if (m.attempts > 0 && m.nextAttemptAt > 0 && (q.nextRetryAt === undefined || m.nextAttemptAt < q.nextRetryAt)) q.nextRetryAt = m.nextAttemptAt;
    }
    this.o.metrics.transportQueues(stats);
  }

  // ---- the queue viewer's operations ----

  /** Every queue: the fixed ones always, each remote destination while it holds mail or is frozen. */
  queues(): QueueSummary[] {
    const now = this.o.clock.now();
    const names = new Set<string>(QUEUE_STATES.filter((q) => q !== 'remote-delivery'));
    const all = this.o.store.all();
    for (const s of all) names.add(s.queue);
    for (const q of this.o.store.frozen()) names.add(q);
    return [...names].sort(queueOrder).map((name) => {
      const inQueue = all.filter((s) => s.queue === name).map((s) => s.message);
      const waiting = inQueue.filter((m) => m.attempts > 0 && m.nextAttemptAt > now);
      const state: QueueSummary['state'] = this.queueFrozen(name)
        ? 'frozen'
        : inQueue.some((m) => this.busy.has(m.envelope.id))
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
    return this.o.store
      .all()
      .filter((s) => s.queue === queue)
      .sort((a, b) => a.message.envelope.receivedAt - b.message.envelope.receivedAt)
      .map((s) => this.summary(s));
  }

  /** One message in full: its summary and its stored record. */
  show(id: string): MessageSummary & { record: QueuedMessage } {
    const s = this.o.store.get(id);
    if (!s) throw new QueueCommandError(404, `no queued message ${id}`);
    return { ...this.summary(s), record: s.message };
  }

  private summary(s: StoredMessage): MessageSummary {
    const m = s.message;
    const pending = m.deliveries.filter((d) => d.status === 'pending').map((d) => d.address);
    const frozen = m.frozen === true || this.queueFrozen(s.queue);
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
      ...(m.attempts > 0 ? { nextAttempt: new Date(Math.max(m.nextAttemptAt, this.o.clock.now())).toISOString() } : {}),
      frozen,
      status: frozen ? FROZEN_STATUS : (m.lastError ?? 'ready'),
    };
  }

  /** Freezes (or unfreezes) a queue or one message: frozen mail stays put, listed as 4.3.2. */
  async setFrozen(target: string, frozen: boolean): Promise<{ target: string; kind: 'queue' | 'message' }> {
    if (isQueueName(target)) {
      await this.o.store.setFrozen(target, frozen);
      if (!frozen) this.kick();
      return { target, kind: 'queue' };
    }
    await this.exclusive(target, (m) => this.o.store.update({ ...m, frozen }));
    if (!frozen) this.kick();
    return { target, kind: 'message' };
  }

  /** Makes a queue's messages (or one message) due now, puts connectors marked down back in service, and runs. */
  async retryNow(target: string): Promise<{ target: string; count: number }> {
    for (const c of this.o.rules.transport.connectors) this.o.router.markUp(c.name);
    const ids = isQueueName(target)
      ? this.o.store.all().filter((s) => s.queue === target || queueState(s.queue) === target).map((s) => s.message.envelope.id)
      : [target];
    let count = 0;
    for (const id of ids) {
      const done = await this.exclusive(id, (m) => this.o.store.update({ ...m, nextAttemptAt: 0 })).then(
        () => true,
        (err: unknown) => {
          // A message of a queue that left it meanwhile (delivered) is no error; a named one that is gone is.
          if (isQueueName(target) && err instanceof QueueCommandError) return false;
          throw err;
        },
      );
      if (done) count++;
    }
    this.kick();
    return { target, count };
  }

  /**
   * Deletes a message; with `ndr`, its undelivered recipients are reported first, as any failure is:
   * `notice` says where that went (an NDR to the sender; Badmail for a bounce; nowhere when NOTIFY
   * asked for no failure report or nothing was left undelivered).
   */
  async delete(id: string, ndr: boolean): Promise<{ id: string; ndr: boolean; notice: DeleteNotice }> {
    let notice: DeleteNotice = 'none';
    await this.exclusive(id, async (m) => {
      notice = await this.deleteNow(m, ndr);
    });
    this.kick();
    return { id, ndr, notice };
  }

  private async deleteNow(m: QueuedMessage, ndr: boolean): Promise<DeleteNotice> {
    const id = m.envelope.id;
    const deliveries = copiesOf(m);
    const pending = deliveries.filter((d) => d.status === 'pending');
    for (const d of pending) {
      d.status = 'failed';
      d.result = { ...DELETED_RESULT, address: d.address };
      if (!ndr) d.reported = true;
    }
    let notice: DeleteNotice = 'none';
    if (ndr) {
      await this.report({ ...m, deliveries });
      if (m.envelope.isDsn === true || m.envelope.mailFrom === '') notice = pending.length > 0 ? 'badmail' : 'none';
      else notice = pending.some((d) => notifyAllows(d.recipient, 'FAILURE')) ? 'ndr' : 'none';
    } else {
      this.track('failed', m, pending.map((d) => d.address), 'deleted from the queue by the administrator (no NDR)');
    }
    await this.o.store.remove(id);
    return notice;
  }

  /**
   * Runs an administrator's change to one message once no attempt is in flight for it, and holds the
   * message as busy meanwhile, so no attempt starts from the record the change is about to replace.
   */
  private async exclusive(id: string, change: (m: QueuedMessage) => Promise<void>): Promise<void> {
    // An attempt reports its own failure (onError); here only its end matters.
    for (let inFlight = this.busy.get(id); inFlight; inFlight = this.busy.get(id)) await inFlight.catch(() => undefined);
    const s = this.o.store.get(id);
    if (!s) throw new QueueCommandError(404, `no queued message ${id}`);
    const run = change(s.message);
    // The caller gets the change's own outcome from `run`; the busy mark only needs its end.
    const held = run.then(() => undefined, () => undefined).finally(() => this.busy.delete(id));
    this.busy.set(id, held);
    return run;
  }
}

/** A record's copies, to change freely: before categorization, one pending copy per envelope recipient. */
function copiesOf(m: QueuedMessage): Delivery[] {
  return m.kind === 'message'
    ? m.envelope.recipients.map((r): Delivery => ({ address: r.address, recipient: r, status: 'pending' }))
    : m.deliveries.map((d) => ({ ...d }));
}

/** Whether a stored message's content can be read now (the error itself is the caller's to report). */
function isReadable(file: string): Promise<boolean> {
  return readHeaderBlock(file).then(
    () => true,
    () => false,
  );
}

function resultText(r: RecipientResult | undefined): string {
  return r ? `${r.code ?? ''} ${r.enhanced} ${r.text}`.trim() : 'unknown';
}

function queueOrder(a: string, b: string): number {
  const rank = (q: string): number => QUEUE_STATES.indexOf(queueState(q));
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** The header block of a stored message (up to the first empty line, at most 256 KiB). */
async function readHeaderBlock(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(256 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('latin1');
    const end = text.search(/\r?\n\r?\n/);
    return end < 0 ? text : text.slice(0, end);
  } finally {
    await handle.close();
  }
}
