/** The time, so tests can move it without waiting: every part that schedules reads it from here. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
