import type { Rules } from '../config/schema.js';
import type { EnvelopeRecipient } from './types.js';

export type RetryConfig = Rules['transport']['retry'];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** How long after its n-th failed attempt (1-based) a delivery is tried again: the listed intervals, then every `thenEveryMinutes`. */
export function retryDelayMs(failedAttempts: number, retry: RetryConfig): number {
  const listed = retry.intervalsMinutes[failedAttempts - 1];
  return (listed ?? retry.thenEveryMinutes) * MINUTE;
}

/** Whether a message received at `receivedAt` has outlived the expiration time-out (NDR 4.4.7). */
export function isExpired(receivedAt: number, now: number, retry: RetryConfig): boolean {
  return now - receivedAt >= retry.expireHours * HOUR;
}

/** Whether a message still in the queue is old enough for its delay DSN. */
export function isDelayNotifyDue(receivedAt: number, now: number, retry: RetryConfig): boolean {
  return now - receivedAt >= retry.delayNotifyHours * HOUR;
}

/** When a message that failed categorization is tried again. */
export function failedRetryAt(now: number, retry: RetryConfig): number {
  return now + retry.failedRetryMinutes * MINUTE;
}

/**
 * Whether the recipient's NOTIFY asks for this kind of report (RFC 3461). Without NOTIFY, failures and
 * delays are reported and successes are not; NEVER silences everything.
 */
export function notifyAllows(recipient: EnvelopeRecipient, kind: 'SUCCESS' | 'FAILURE' | 'DELAY'): boolean {
  const notify = recipient.notify;
  if (notify === undefined || notify.length === 0) return kind !== 'SUCCESS';
  return notify.includes(kind);
}
