import cluster from 'node:cluster';
import { once } from 'node:events';
import { loadRules } from '../config/load.js';
import { startEdge } from '../edge/edge.js';
import { createLogger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { usesBundledEngine, withBundledBackend } from '../transport/bundled-backend.js';
import { startTransportEngine } from '../transport/engine.js';
import { stopPretenuring } from '../runtime/pretenuring.js';
import { configOption, parseCommandArgs } from './args.js';
import type { Command } from './commands.js';
import { inProcessEngine } from './serve/in-process-engine.js';
import { runPrimary } from './serve/primary.js';
import { runWorker } from './serve/worker.js';
import { workerCount } from './serve/worker-rules.js';

const usage = 'usage: portcullis serve [--config FILE]\n';

/**
 * `portcullis serve`: opens every listener of the rule set and relays to the back end.
 * SIGHUP reloads the rule set (a bad one is logged and refused); SIGTERM/SIGINT shut down gracefully.
 * With `workers` above 1 this process becomes the primary of a group of edge processes (serve/primary.ts).
 */
export const serveCommand: Command = {
  summary: 'run the edge: every listener of the rule set, relaying live to the back end',
  async run(args) {
    const parsed = parseCommandArgs('serve', usage, args, configOption);
    if (!parsed) return 2;
    const config = parsed.values.config;
    // Each process that accepts connections, a worker or the only process (runtime/pretenuring.ts).
    stopPretenuring();
    if (cluster.isWorker) return runWorker(config);
    // Signals are taken from the start: the listeners announce themselves before startEdge returns.
    const stop = Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
    // With no back end configured (or backend.url: bundled) the bundled transport engine runs in this
    // process, started first, and every rule set loaded (also on SIGHUP) relays to its listen address
    // (logs and `check` say so); the edge hands it each transaction directly, with no SMTP text.
    const first = await loadRules(config);
    const workers = workerCount(first.workers);
    if (workers > 1) return runPrimary(config, workers, stop);
    const metrics = new Metrics({ processMetrics: true });
    const logger = createLogger({ level: first.log.level });
    const engine = usesBundledEngine(first) ? await startTransportEngine(first, { metrics, logger }) : undefined;
    const load = async () => (engine ? withBundledBackend(await loadRules(config), engine) : loadRules(config));
    const starting = startEdge({ load }, { metrics, logger, ...(engine ? { inProcessBackend: inProcessEngine(engine) } : {}) });
    // One generation for edge and engine: the engine takes the directory of exactly the rule set the
    // edge has put in force, and nothing from one it refused. Reloads run one after another.
    let reloads: Promise<unknown> = Promise.resolve();
    process.on('SIGHUP', () => {
      reloads = reloads
        .then(() => starting)
        .then((e) => e.reload())
        .then((rules) => engine?.useDirectoryOf(rules))
        // reload() has already logged why a rule set was refused; the old one stays in force for both.
        .catch(() => undefined);
    });
    let edge: Awaited<typeof starting>;
    try {
      edge = await starting;
    } catch (err) {
      // An edge that cannot open (port taken) must not leave the engine running with nobody in front.
      await engine?.close();
      throw err;
    }
    const [signal] = (await stop) as [NodeJS.Signals];
    const drain = await edge.close();
    await engine?.close();
    logger.info({ event: 'exit', signal, code: 0, sessions: drain.sessions, cut: drain.cut, drainMs: drain.ms }, `stopped on ${signal}`);
    return 0;
  },
};
