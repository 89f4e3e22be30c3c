/**
 * `/metrics` for a group of processes: the primary's own registry and each worker's, merged by
 * prom-client's cluster aggregation (counters and histograms summed), plus what only the group has:
 * how many workers run, how many were replaced, and sessions per worker (the one place a `worker`
 * label helps: it shows whether the kernel spreads connections evenly).
 */
import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

/** A registry's contents as `getMetricsAsJSON` gives them, the shape workers send over IPC. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export class GroupMetrics {
  private readonly registry = new Registry();
  private readonly workers = new Gauge({ name: 'portcullis_workers', help: 'Edge worker processes running.', registers: [this.registry] });
  private readonly replacements = new Counter({
    name: 'portcullis_worker_restarts_total',
    help: 'Edge worker processes that died and were replaced.',
    registers: [this.registry],
  });
  private readonly perWorker = new Gauge({
    name: 'portcullis_worker_sessions',
    help: 'SMTP sessions a running worker process has opened since it started, by worker.',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });

  readonly contentType = this.registry.contentType;

  replaced(): void {
    this.replacements.inc();
  }

  /** The whole group's metrics text: `own` (the primary's registry) and one JSON per worker, keyed by worker id. */
  async render(own: Registry, workers: ReadonlyMap<number, MetricsJson>): Promise<string> {
    this.workers.set(workers.size);
    this.perWorker.reset();
    for (const [id, json] of workers) this.perWorker.set({ worker: String(id) }, sessionsIn(json));
    const all = [await own.getMetricsAsJSON(), await this.registry.getMetricsAsJSON(), ...workers.values()];
    return AggregatorRegistry.aggregate(all).metrics();
  }
}

function sessionsIn(json: MetricsJson): number {
  const sessions = json.find((m) => m.name === 'portcullis_sessions_total') as MetricObjectWithValues<MetricValue<string>> | undefined;
  return (sessions?.values ?? []).reduce((n, v) => n + v.value, 0);
}
