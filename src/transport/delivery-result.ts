import type { RecipientResult } from './types.js';

/**
 * A delivery result as people read it, in the queue's last error, the tracking log, the queue
 * viewer and the text of a DSN: `451 4.4.1 No answer from any host`, the code left out when the
 * result has none (an expiry, a local decision).
 */
export function formatResult(r: Pick<RecipientResult, 'code' | 'enhanced' | 'text'>): string {
  return `${r.code ?? ''} ${r.enhanced} ${r.text}`.trim();
}
