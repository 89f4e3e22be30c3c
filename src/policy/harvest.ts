import type { Rules } from '../config/schema.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

/**
 * Harvest protection: steps 11-12 tell a sender which addresses exist, so a session that collects
 * too many invalid recipients is first slowed (every further RCPT reply held back), then disconnected.
 */
export class HarvestGuard {
  private invalid = 0;

  constructor(private readonly settings: Rules['harvest']) {}

  /** Pass every RCPT verdict through: counts invalid recipients, adds the delay, or disconnects. */
  apply(v: Verdict, trace: TraceEntry[]): Verdict {
    if (v.code === 550 && v.enhanced === '5.1.1') this.invalid += 1;
    const { delayAfter, delayMs, disconnectAfter } = this.settings;
    if (this.invalid > disconnectAfter) {
      trace.push(traceEntry(STEPS.harvest, `${this.invalid} invalid recipients: disconnected`));
      return verdict('drop', 421, '4.7.0', 'Too many invalid recipients, closing connection', STEPS.harvest);
    }
    if (this.invalid > delayAfter && delayMs > 0) {
      trace.push(traceEntry(STEPS.harvest, `${this.invalid} invalid recipients: reply delayed ${delayMs} ms`));
      return { ...v, delayMs };
    }
    return v;
  }
}
