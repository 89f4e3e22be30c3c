import type { BackPressureConfig } from '../config/limits-schema.js';
import type { ResourceProbe } from '../runtime/resource-probe.js';
import { traceEntry, verdict, type TraceEntry, type Verdict } from './verdict.js';
import { STEPS } from './steps.js';

export interface BackPressureEvents {
  /** The process went under pressure (with why) or came out of it: once per change. */
  backPressure(under: boolean, reason: string): void;
}

/**
 * Back pressure, as Exchange's: while the event loop lags past its bound or the resident memory
 * passes its bound, new connections get `421 4.3.2` and new transactions `452 4.3.1`, so the load
 * already in the process can finish instead of everything slowing down together.
 */
export class BackPressure {
  private under = false;

  constructor(
    private readonly config: BackPressureConfig,
    private readonly probe: ResourceProbe,
    private readonly events: BackPressureEvents,
  ) {}

  /** At connect: a refusal while under pressure. */
  connection(trace: TraceEntry[]): Verdict | undefined {
    return this.judge(trace, () => verdict('drop', 421, '4.3.2', 'System not accepting network messages', STEPS.backPressure));
  }

  /** At MAIL FROM: a refusal of the new transaction while under pressure. */
  transaction(trace: TraceEntry[]): Verdict | undefined {
    return this.judge(trace, () => verdict('tempfail', 452, '4.3.1', 'Insufficient system resources', STEPS.backPressure));
  }

  private judge(trace: TraceEntry[], refusal: () => Verdict): Verdict | undefined {
    const why = this.reason();
    if (why === undefined) {
      trace.push(traceEntry(STEPS.backPressure, 'normal'));
      return undefined;
    }
    trace.push(traceEntry(STEPS.backPressure, `under pressure: ${why}`));
    return refusal();
  }

  /** Why the process is under pressure now, if it is; reports each change once. */
  private reason(): string | undefined {
    const { eventLoopLagMs, rssMb } = this.probe.sample();
    const { maxEventLoopLagMs, maxRssMb } = this.config;
    const why =
      maxEventLoopLagMs !== undefined && eventLoopLagMs > maxEventLoopLagMs
        ? `event loop lag ${Math.round(eventLoopLagMs)} ms > ${maxEventLoopLagMs} ms`
        : maxRssMb !== undefined && rssMb > maxRssMb
          ? `resident memory ${Math.round(rssMb)} MB > ${maxRssMb} MB`
          : undefined;
    if ((why !== undefined) !== this.under) {
      this.under = why !== undefined;
      this.events.backPressure(this.under, why ?? `event loop lag ${Math.round(eventLoopLagMs)} ms, resident memory ${Math.round(rssMb)} MB`);
    }
    return why;
  }
}
