/** How many edge processes a rule set asks for, and the rule set as each of them runs it. */
import os from 'node:os';
import type { Rules } from '../../config/schema.js';
import { withBundledBackend } from '../../transport/bundled-backend.js';

/** `workers` as a number: `auto` is one per core the process may use. */
export function workerCount(workers: Rules['workers']): number {
  return workers === 'auto' ? os.availableParallelism() : workers;
}

/** One process's part of a group-wide limit: never more than the whole, never nothing. */
export function shareOf(limit: number, workers: number): number {
  return Math.max(1, Math.floor(limit / workers));
}

/**
 * The rule set one of `workers` processes runs. Each listener's connection limits are divided among
 * the processes, so that together they never admit more than the configured limit (docs/workers.md);
 * the metrics endpoint belongs to the primary; the bundled engine, when used, runs in the primary at `engine`.
 */
export function workerRules(rules: Rules, workers: number, engine: { host: string; port: number } | undefined): Rules {
  const own: Rules = { ...(engine ? withBundledBackend(rules, { address: engine }) : rules) };
  delete own.metrics;
  return {
    ...own,
    listeners: own.listeners.map((l) => ({
      ...l,
      limits: {
        ...l.limits,
        maxConnections: shareOf(l.limits.maxConnections, workers),
        maxConnectionsPerClient: shareOf(l.limits.maxConnectionsPerClient, workers),
      },
    })),
  };
}
