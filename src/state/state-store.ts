/**
 * The State port: counters, greylisting triplets and the protocol-test cache, each with a lifetime.
 * In memory for one process (the default: nothing to install), or Redis/Valkey so that every worker
 * and every node behind a load balancer shares one view. The operations are the few that Redis does
 * atomically, so both stores give the same answers.
 */
export interface StateStore {
  /** Adds `by` to the counter `key` and returns its new value; a counter that did not exist starts at 0 and lives `ttlMs`. */
  increment(key: string, by: number, ttlMs: number): Promise<number>;
  /** The value of `key`, or undefined when it never was or has expired. */
  get(key: string): Promise<string | undefined>;
  /** Sets `key` for `ttlMs`, replacing any value. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Sets `key` for `ttlMs` only when it has no value; true when this call set it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
