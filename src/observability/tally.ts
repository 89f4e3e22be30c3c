/**
 * Labelled counters for the per-message path. prom-client's inc() builds a label string, checks
 * every label name and looks the string up in its map on every call, about half a microsecond; a
 * message takes a dozen such increments (each reply, each decision, each DNSBL lookup). Here an
 * increment adds one to a plain number found under a key the caller builds from values it already
 * has, and the sums go to prom-client whenever the registry is read (a scrape, or a worker's report
 * to the primary), so what is exported is exactly what was counted.
 */
import { Counter, type CounterConfiguration, type LabelValues } from 'prom-client';

interface Tally<T extends string> {
  labels: LabelValues<T>;
  count: number;
}

export class TalliedCounter<T extends string> {
  /** One entry per label set, like prom-client's own map, so bounded by the same label cardinality. */
  private readonly tallies = new Map<string, Tally<T>>();

  constructor(config: Omit<CounterConfiguration<T>, 'collect'>) {
    const tallies = this.tallies;
    new Counter<T>({
      ...config,
      collect(this: Counter<T>) {
        for (const t of tallies.values()) {
          if (t.count === 0) continue;
          this.inc(t.labels, t.count);
          t.count = 0;
        }
      },
    });
  }

  /** Counts one under `key`, which must name one label set; `labels` is asked the first time only. */
  inc(key: string, labels: () => LabelValues<T>): void {
    const t = this.tallies.get(key);
    if (t) t.count += 1;
    else this.tallies.set(key, { labels: labels(), count: 1 });
  }
}
