/** The vocabulary of the engine's admin interface, shared by the engine (`admin.ts`) and `portcullis queue`. */
import { QUEUE_STATES } from './queue-store.js';

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

/** Whether a name is a queue (a state, or `remote-delivery/<destination>`), as opposed to a message id. */
export function isQueueName(name: string): boolean {
  return (QUEUE_STATES as readonly string[]).includes(name) || /^remote-delivery\/[^/]+$/.test(name);
}
