/**
 * One edge worker process of `serve` with `workers` > 1: opens the rule set's listeners (the sockets
 * are shared through node:cluster), and does what the primary asks: reload in two phases (prepare on
 * every worker, then commit or abort everywhere), report its metrics, drain on SIGTERM.
 */
import cluster from 'node:cluster';
import { loadRulesFromString } from '../../config/load.js';
import { startEdge, type Edge, type PreparedReload } from '../../edge/edge.js';
import { parseEndpoint } from '../../net/endpoint.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { linkToPrimary } from '../../runtime/primary-link.js';
import { READY } from '../../runtime/worker-group.js';
import { workerRules } from './worker-rules.js';

/** What the primary tells each worker in its environment. */
export const WORKERS_ENV = 'PORTCULLIS_WORKERS';
export const ENGINE_ENV = 'PORTCULLIS_BUNDLED_ENGINE';

/** Requests the primary makes of a worker, and the one a worker makes of the primary. */
export const ASK = { prepare: 'prepare', commit: 'commit', abort: 'abort', metrics: 'metrics', rules: 'rules' } as const;

export async function runWorker(config: string): Promise<number> {
  // The primary decides when to stop and when to reload: a terminal's SIGINT or SIGHUP reaches the
  // whole process group, so a worker takes them without dying, and drains once, however often told.
  const stop = new Promise<string>((resolve) => {
    process.on('SIGTERM', () => resolve('SIGTERM'));
    process.on('SIGINT', () => resolve('SIGINT'));
    process.on('disconnect', () => resolve('disconnect'));
  });
  process.on('SIGHUP', () => undefined);
  const workers = Number(process.env[WORKERS_ENV]);
  const engineAt = process.env[ENGINE_ENV];
  const engine = engineAt ? parseEndpoint(engineAt, ENGINE_ENV) : undefined;
  const metrics = new Metrics({ processMetrics: true });
  let edge: Edge | undefined;
  let prepared: { reload: PreparedReload; text: string } | undefined;
  // The rule set's text comes from the primary, so that every worker, a replacement too, runs the
  // generation the group has in force, whatever the file says now.
  let text = '';
  const load = async () => workerRules(await loadRulesFromString(text, config), workers, engine);
  const link = linkToPrimary({
    [ASK.prepare]: async (next) => {
      prepared?.reload.abort();
      prepared = undefined;
      const committed = text;
      text = String(next);
      try {
        prepared = { reload: await edge!.prepare(), text };
      } finally {
        text = committed;
      }
      return undefined;
    },
    [ASK.commit]: () => {
      if (!prepared) throw new Error('nothing prepared to commit');
      prepared.reload.commit();
      text = prepared.text;
      prepared = undefined;
      return undefined;
    },
    [ASK.abort]: () => {
      prepared?.reload.abort();
      prepared = undefined;
      return undefined;
    },
    [ASK.metrics]: () => metrics.registry.getMetricsAsJSON(),
  });
  try {
    text = String(await link.ask(ASK.rules));
    const first = await load();
    const logger = createLogger({ level: first.log.level }).child({ worker: cluster.worker?.id, pid: process.pid });
    edge = await startEdge({ load }, { metrics, logger });
    await link.ask(READY);
    const signal = await stop;
    const drain = await edge.close();
    logger.info({ event: 'exit', signal, code: 0, sessions: drain.sessions, cut: drain.cut, drainMs: drain.ms }, `worker stopped on ${signal}`);
    return 0;
  } finally {
    // The IPC channel would keep the process alive after its work is done.
    if (process.connected) process.disconnect();
  }
}
