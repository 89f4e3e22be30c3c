import { createReadStream } from 'node:fs';
import type { BadmailWriter } from '../badmail/badmail-writer.js';
import { formatResult } from './delivery-result.js';
import { buildDsn, type DsnRecipient } from './dsn.js';
import type { QueueContext } from './queue-context.js';
import { newQueueId, type Delivery, type QueuedMessage } from './queue-store.js';
import { notifyAllows } from './retry-schedule.js';
import type { RecipientResult } from './types.js';

/**
 * Reports what became of a message's copies: failures by NDR (to Badmail for a bounce, which is
 * never bounced), delays and successes by DSN when NOTIFY asks; each DSN is queued as a new message
 * from <> in `dsn-pending`.
 */
export class DeliveryReport {
  constructor(
    private readonly ctx: QueueContext,
    private readonly badmail: BadmailWriter,
  ) {}

  /**
   * Reports every copy that ended and was not yet reported: failures by NDR (to Badmail for a bounce),
   * successes when NOTIFY=SUCCESS asked for one: `delivered` for local delivery, `relayed` for a next
   * hop that does not offer DSN (RFC 3461 4.2.2; one that does got the NOTIFY and reports itself).
   * Marks them reported in `m` (the caller saves).
   */
  async report(m: QueuedMessage): Promise<void> {
    const { ctx } = this;
    const ended = m.deliveries.filter((d) => d.status !== 'pending' && !d.reported);
    if (ended.length === 0) return;
    const failed = ended.filter((d) => d.status === 'failed');
    for (const d of failed) {
      ctx.track('failed', m, [d.address], reason(d));
      ctx.metrics?.transportDelivery('failed');
    }
    const isBounce = m.envelope.isDsn === true || m.envelope.mailFrom === '';
    if (failed.length > 0 && isBounce) {
      await this.badmail.write(createReadStream(await ctx.store.contentFile(m.contentId)), {
        id: m.envelope.id,
        time: new Date(ctx.clock.now()).toISOString(),
        source: 'undeliverable-bounce',
        sender: m.envelope.mailFrom,
        recipients: failed.map((d) => d.address),
        reason: failed.map((d) => `${d.address}: ${reason(d)}`).join('; '),
        envelope: m.envelope,
        rootId: m.rootId,
      });
      ctx.track('badmail', m, failed.map((d) => d.address), `undeliverable bounce: ${failed.map(reason).join('; ')}`);
      ctx.metrics?.transportDsn('badmail');
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
  async sendDsn(m: QueuedMessage, about: Delivery[], action: DsnRecipient['action']): Promise<void> {
    if (about.length === 0 || m.envelope.mailFrom === '' || m.envelope.isDsn) return;
    const { rules, store, clock } = this.ctx;
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
      originalContentPath: await store.contentFile(m.contentId),
      results,
      from: rules.transport.dsn.from ?? `Mail Delivery System <MAILER-DAEMON@${rules.hostname}>`,
      now: new Date(now),
      ...(action === 'delayed' ? { willRetryUntil: new Date(m.envelope.receivedAt + rules.transport.retry.expireHours * 3_600_000) } : {}),
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
    this.ctx.track('dsn', m, recipients.map((r) => r.address), `${action} DSN ${id} about ${results.map((r) => `${r.address} ${r.enhanced}`).join(', ')}`);
    this.ctx.metrics?.transportDsn(action);
  }
}

/** A copy's last result as the tracking log and Badmail name it. */
function reason(d: Delivery): string {
  return d.result ? formatResult(d.result) : 'unknown';
}
