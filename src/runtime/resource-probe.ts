/**
 * How loaded the process is, for back pressure: the event loop's lag and the resident memory. A port,
 * so tests inject the numbers instead of exhausting the machine.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface ResourceSample {
  /** The worst event-loop delay over the last sampling interval, in milliseconds. */
  eventLoopLagMs: number;
  /** Resident set size, in mebibytes. */
  rssMb: number;
}

export interface ResourceProbe {
  /** The latest sample: cheap, read on every connection and every MAIL FROM. */
  sample(): ResourceSample;
  stop(): void;
}

/**
 * The process's own numbers, refreshed every `intervalMs` (not per call: reading the histogram and
 * the RSS costs more than a connection should pay).
 */
export function processResourceProbe(intervalMs: number): ResourceProbe {
  const lag: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  let current: ResourceSample = { eventLoopLagMs: 0, rssMb: process.memoryUsage.rss() / 2 ** 20 };
  const timer = setInterval(() => {
    current = { eventLoopLagMs: lag.max / 1e6, rssMb: process.memoryUsage.rss() / 2 ** 20 };
    lag.reset();
  }, intervalMs);
  timer.unref();
  return {
    sample: () => current,
    stop: () => {
      clearInterval(timer);
      lag.disable();
    },
  };
}
