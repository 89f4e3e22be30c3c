/**
 * Labelled counters, gauges and histograms for the per-message and per-connection paths. prom-client's
 * inc() and observe() build a label string, check every label name and look the string up in a map on
 * every call, about half a microsecond (a histogram's observe several); a message takes a dozen such
 * updates (each reply, each decision, each DNSBL lookup, each relay), a connection two more. Here an
 * update goes to plain numbers found under a key the caller builds from values it already has.
 * Counters and gauges hand their numbers to prom-client whenever the registry is read (a scrape, or a
 * worker's report to the primary); histograms keep their own numbers and export them in prom-client's
 * form, so what is exported is exactly what was counted.
 */
import { Counter, Gauge, Histogram, type CounterConfiguration, type GaugeConfiguration, type LabelValues, type Metric, type Registry } from 'prom-client';

interface Tally<T extends string> {
  labels: LabelValues<T>;
  count: number;
}

/** The Map under `root` that holds `path`'s last value, the Maps on the way made the first time. */
function levelOf(root: Map<unknown, unknown>, path: readonly unknown[]): Map<unknown, unknown> {
  let level = root;
  for (let i = 0; i < path.length - 1; i++) {
    let next = level.get(path[i]) as Map<unknown, unknown> | undefined;
    if (!next) level.set(path[i], (next = new Map()));
    level = next;
  }
  return level;
}

export class TalliedCounter<T extends string> {
  /** One entry per label set, like prom-client's own map, so bounded by the same label cardinality. */
  private readonly tallies = new Map<string, Tally<T>>();
  /** The same tallies found by their label values in turn (incAt), with no key string built per count. */
  private readonly paths = new Map<unknown, unknown>();
  /** Every tally, however it is found. */
  private readonly all: Tally<T>[] = [];

  constructor(config: Omit<CounterConfiguration<T>, 'collect'>) {
    const all = this.all;
    new Counter<T>({
      ...config,
      collect(this: Counter<T>) {
        for (const t of all) {
          if (t.count === 0) continue;
          this.inc(t.labels, t.count);
          t.count = 0;
        }
      },
    });
  }

  /**
   * Counts one under `key`, which must name one label set; `labels` is asked the first time only, and
   * given the key, so that a caller whose key is its one label value passes a function made once.
   */
  inc(key: string, labels: (key: string) => LabelValues<T>): void {
    const t = this.tallies.get(key);
    if (t) t.count += 1;
    else this.tallies.set(key, this.added(labels(key)));
  }

  /**
   * Counts one under the values in `path`, which together must name one label set (and always the
   * same number of them); `labels` is asked the first time only, and given the path. For label sets
   * of several values, whose joined key string would cost more to build and hash than a lookup per
   * value. The path is read during the call only: a caller may fill one array again for each count.
   */
  incAt(path: readonly unknown[], labels: (path: readonly unknown[]) => LabelValues<T>): void {
    const level = levelOf(this.paths, path);
    const last = path.length - 1;
    const t = level.get(path[last]) as Tally<T> | undefined;
    if (t) t.count += 1;
    else level.set(path[last], this.added(labels(path)));
  }

  private added(labels: LabelValues<T>): Tally<T> {
    const t = { labels, count: 1 };
    this.all.push(t);
    return t;
  }
}

/**
 * A gauge moved by whole steps (a connection opened, one closed) under a key the caller builds; the
 * numbers are set on prom-client's Gauge whenever the registry is read.
 */
export class TalliedGauge<T extends string> {
  /** One entry per label set, like prom-client's own map. */
  private readonly tallies = new Map<string, Tally<T>>();

  constructor(config: Omit<GaugeConfiguration<T>, 'collect'>) {
    const tallies = this.tallies;
    new Gauge<T>({
      ...config,
      collect(this: Gauge<T>) {
        for (const t of tallies.values()) this.set(t.labels, t.count);
      },
    });
  }

  /** Moves the value under `key`, which must name one label set, by `step`; `labels` is asked (given the key) the first time only. */
  add(key: string, labels: (key: string) => LabelValues<T>, step: number): void {
    const t = this.tallies.get(key);
    if (t) t.count += step;
    else this.tallies.set(key, { labels: labels(key), count: step });
  }
}

/** One label set's histogram: observations per bucket (not cumulative), their sum and count. */
type HistogramData = { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Array<Record<string, unknown>> };

interface Series<T extends string> {
  labels: LabelValues<T>;
  buckets: number[];
  sum: number;
  count: number;
}

export interface TalliedHistogramConfiguration<T extends string> {
  name: string;
  help: string;
  labelNames: readonly T[];
  buckets: readonly number[];
  registers: Registry[];
}

/**
 * A histogram registered as a prom-client metric that keeps its own numbers: observe() adds to plain
 * numbers by label set, with prom-client's arithmetic (the same bucket for a value, its sum added in
 * the same order), and the registry reads them in exactly the form prom-client's Histogram gives.
 */
export class TalliedHistogram<T extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly bounds: readonly number[];
  private series = new Map<string, Series<T>>();
  /** The same series found by their label values in turn (observeAt). */
  private paths = new Map<unknown, unknown>();
  /** Every series in the order first observed, however it is found: the order they are exported in. */
  private all: Series<T>[] = [];

  constructor(config: TalliedHistogramConfiguration<T>) {
    // A prom-client Histogram of the same configuration validates the name, labels and buckets as one would.
    new Histogram<T>({ ...config, labelNames: [...config.labelNames], buckets: [...config.buckets], registers: [] });
    this.name = config.name;
    this.help = config.help;
    this.bounds = [...config.buckets];
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric<T>);
  }

  /** Observes `value` under `key`, which must name one label set; `labels` is asked (given the key) the first time only. */
  observe(key: string, labels: (key: string) => LabelValues<T>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = this.added(labels(key))));
    this.count(s, value);
  }

  /**
   * Observes `value` under the values in `path`, as TalliedCounter.incAt counts: no key string built
   * and hashed per observation (a DNSBL lookup's zone and whether the cache answered, three a connection).
   */
  observeAt(path: readonly unknown[], labels: (path: readonly unknown[]) => LabelValues<T>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const level = levelOf(this.paths, path);
    const last = path.length - 1;
    let s = level.get(path[last]) as Series<T> | undefined;
    if (!s) level.set(path[last], (s = this.added(labels(path))));
    this.count(s, value);
  }

  private added(labels: LabelValues<T>): Series<T> {
    const s = { labels, buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
    this.all.push(s);
    return s;
  }

  private count(s: Series<T>, value: number): void {
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        s.buckets[i] = (s.buckets[i] as number) + 1;
        break;
      }
    }
    s.sum += value;
    s.count += 1;
  }

  reset(): void {
    this.series = new Map();
    this.paths = new Map();
    this.all = [];
  }

  /** What the registry writes as text: each sample's own labels, and the label set as `sharedLabels`. */
  async getForPromString(): Promise<HistogramData> {
    return this.data();
  }

  /** What getMetricsAsJSON gives (a worker's report to the primary): the label set merged into each sample's labels. */
  async get(): Promise<HistogramData> {
    const data = this.data();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...(labels as object), ...(sharedLabels as object) } }));
    return data;
  }

  private data(): HistogramData {
    const values: Array<Record<string, unknown>> = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.all) {
      let below = 0;
      this.bounds.forEach((le, i) => {
        below += s.buckets[i] ?? 0;
        values.push({ labels: { le }, sharedLabels: s.labels, value: below, metricName: bucket, exemplar: null });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
