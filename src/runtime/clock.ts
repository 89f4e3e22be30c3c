/** The time, so tests can move it without waiting: every part that schedules reads it from here. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/**
 * Waits that tests drive instead of sleeping (DNS deadlines first): a part that sets one takes these
 * as a port. The handle is opaque, so a test's timers may hand out anything.
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's clock and timers. The globals are looked up at each call, so node:test's mock.timers still applies. */
export const systemClock: Clock & Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout> | undefined),
};
