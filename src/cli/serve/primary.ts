/**
 * The primary process of `serve` with `workers` > 1: it owns the bundled engine and `/metrics`,
 * starts the edge workers (serve/worker.ts) and speaks for them. SIGHUP reloads every worker in two
 * phases, all or none; SIGTERM drains every worker, then the engine; a worker that dies is replaced.
 */
import { readFile } from 'node:fs/promises';
import { loadRulesFromString } from '../../config/load.js';
import type { Rules } from '../../config/schema.js';
import { formatEndpoint } from '../../net/endpoint.js';
import { GroupMetrics, type MetricsJson } from '../../observability/group-metrics.js';
import { startMetricsServer, type MetricsServer } from '../../observability/http.js';
import { createLogger } from '../../observability/logger.js';
import { Metrics } from '../../observability/metrics.js';
import { WorkerGroup } from '../../runtime/worker-group.js';
import { usesBundledEngine } from '../../transport/bundled-backend.js';
import { startTransportEngine } from '../../transport/engine.js';
import { ASK, ENGINE_ENV, WORKERS_ENV } from './worker.js';
import { workerCount } from './worker-rules.js';

/** Time a worker has to open its listeners, and to answer a request. */
const READY_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 30_000;
const METRICS_TIMEOUT_MS = 5_000;
/** How long past the grace period a worker may take to exit before it is killed. */
const EXIT_MARGIN_MS = 5_000;

export async function runPrimary(config: string, count: number, stop: Promise<unknown>): Promise<number> {
  // The text the group has in force: a worker, first or replacement, starts from exactly this.
  let committed = await readFile(config, 'utf8');
  const first = await loadRulesFromString(committed, config);
  const logger = createLogger({ level: first.log.level });
  const metrics = new Metrics({ processMetrics: true });
  const group = new GroupMetrics();
  const engine = usesBundledEngine(first) ? await startTransportEngine(first, { metrics, logger }) : undefined;
  const starting = WorkerGroup.start({
    count,
    env: { [WORKERS_ENV]: String(count), ...(engine ? { [ENGINE_ENV]: formatEndpoint(engine.address) } : {}) },
    handlers: { [ASK.rules]: () => committed },
    onReplace: (exit) => {
      group.replaced();
      logger.warn({ event: 'worker-exit', ...exit }, `worker ${exit.worker} (pid ${exit.pid}) exited; starting another`);
    },
    readyTimeoutMs: READY_TIMEOUT_MS,
  });

  /** Validates in the primary, then on every worker; commits everywhere only if all accepted. */
  const reload = async (workers: WorkerGroup): Promise<void> => {
    let text: string;
    let rules: Rules;
    try {
      text = await readFile(config, 'utf8');
      rules = await loadRulesFromString(text, config);
      if (workerCount(rules.workers) !== count) throw new Error(`workers: changed from ${count}; read at start-up only, restart to change it`);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'reload refused: the rule set cannot be applied; the old one stays');
      return;
    }
    const answers = await workers.request(ASK.prepare, text, REQUEST_TIMEOUT_MS);
    const refused = answers.filter((a) => !a.ok);
    if (refused.length > 0) {
      await workers.request(ASK.abort, undefined, REQUEST_TIMEOUT_MS);
      const workersRefusing = refused.map((a) => a.worker);
      logger.error({ err: refused[0]?.error, workers: workersRefusing }, 'reload refused: the rule set cannot be applied; the old one stays');
      return;
    }
    committed = text;
    const commits = await workers.request(ASK.commit, undefined, REQUEST_TIMEOUT_MS);
    for (const c of commits.filter((a) => !a.ok)) logger.error({ worker: c.worker, err: c.error }, 'worker did not commit the reload');
    engine?.useDirectoryOf(rules);
    logger.info({ workers: commits.length }, 'rule set reloaded');
  };
  // Taken from the start (SIGHUP's default would end the process); a reload waits for the group.
  let reloads: Promise<unknown> = starting.catch(() => undefined);
  process.on('SIGHUP', () => {
    reloads = reloads
      .then(() => starting)
      .then(reload)
      .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'reload failed'));
  });

  let workers: WorkerGroup;
  try {
    workers = await starting;
  } catch (err) {
    // Edges that cannot open (port taken) must not leave the engine running with nobody in front.
    await engine?.close();
    throw err;
  }
  let metricsServer: MetricsServer | undefined;
  if (first.metrics) {
    const source = { registry: { contentType: group.contentType }, render: () => renderGroup(workers, metrics, group) };
    try {
      metricsServer = await startMetricsServer(first.metrics.listen, source, () => ({ status: 'ok', workers: workers.size }));
    } catch (err) {
      await workers.stop('SIGTERM', first.shutdownGraceMs + EXIT_MARGIN_MS);
      await engine?.close();
      throw err;
    }
    logger.info({ metrics: metricsServer.address }, 'metrics listening');
  }
  logger.info({ event: 'ready', workers: count }, `${count} edge workers listening`);
  const counted = [first.rateLimits && 'rateLimits', first.greylisting && 'greylisting'].filter(Boolean);
  if (counted.length > 0 && !first.state) {
    // Each worker's memory store counts on its own: a limit is reached up to `count` times over (docs/workers.md).
    logger.warn({ event: 'per-worker-state', workers: count, keys: counted }, `${counted.join(' and ')} count per worker without state.url: set state.url to share them`);
  }

  const [signal] = (await stop) as [NodeJS.Signals];
  logger.info({ event: 'drain', workers: workers.size }, `stopping ${workers.size} edge workers`);
  await workers.stop('SIGTERM', first.shutdownGraceMs + EXIT_MARGIN_MS);
  await metricsServer?.close();
  await engine?.close();
  logger.info({ event: 'exit', signal, code: 0, workers: count, replaced: workers.replaced }, `stopped on ${signal}`);
  return 0;
}

async function renderGroup(workers: WorkerGroup, own: Metrics, group: GroupMetrics): Promise<string> {
  const answers = await workers.request(ASK.metrics, undefined, METRICS_TIMEOUT_MS);
  const failed = answers.find((a) => !a.ok);
  if (failed) throw new Error(`worker ${failed.worker} did not report its metrics: ${failed.error}`);
  return group.render(own.registry, new Map(answers.map((a) => [a.worker, a.value as MetricsJson])));
}
