/**
 * A private Prometheus server (Debian's `prometheus` package) for the interop suite: its own
 * configuration, data directory and loopback port under a temporary folder, scraping the given
 * targets every second and evaluating the given rule files, and a client for its HTTP API.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { freePort, launch, pause, tempDir, waitForPorts, type Running } from './peers.js';

export const PROMETHEUS = '/usr/bin/prometheus';

/** One series of an instant query's vector result. */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Prometheus extends Running {
  url: string;
  /** Runs an instant query; rejects with Prometheus's own error when it does not parse or fails. */
  query(expr: string): Promise<Sample[]>;
  /** GET on an API path (`/api/v1/...`), returning its `data`. */
  api<T>(pathAndQuery: string): Promise<T>;
  /** Waits (bounded) until every target has been scraped `count` times after this call. */
  waitForScrapes(count: number, timeoutMs?: number): Promise<void>;
}

interface Target {
  scrapeUrl: string;
  lastScrape: string;
  health: string;
  lastError: string;
}

/** Starts Prometheus on a free loopback port, scraping `targets` (host:port) as job `portcullis`. */
export async function startPrometheus(targets: string[], ruleFiles: string[] = []): Promise<Prometheus> {
  const dir = await tempDir('portcullis-prometheus-');
  const port = await freePort();
  // JSON is YAML; a scrape timeout may not exceed the interval.
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: ruleFiles.map((f) => path.resolve(f)),
    scrape_configs: [{ job_name: 'portcullis', static_configs: [{ targets }] }],
  };
  await fs.writeFile(path.join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const server = launch(PROMETHEUS, [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  await waitForPorts(server, 'tcp', 1, 30_000);
  const url = `http://127.0.0.1:${port}`;

  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`${pathAndQuery}: ${body.errorType}: ${body.error}`);
    return body.data;
  };
  // Ready once the API answers (the TSDB opens after the port is bound).
  for (let i = 0; ; i++) {
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (i >= 300) throw new Error(`Prometheus did not become ready:\n${server.output()}`);
    await pause(50);
  }

  return {
    ...server,
    url,
    api,
    query: async (expr) => {
      const data = await api<{ resultType: string; result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType !== 'vector') throw new Error(`${expr}: a ${data.resultType}, not a vector`);
      return data.result;
    },
    waitForScrapes: async (count, timeoutMs = 20_000) => {
      const seen = new Map<string, string[]>();
      const deadline = Date.now() + timeoutMs;
      const since = Date.now();
      for (;;) {
        const { activeTargets } = await api<{ activeTargets: Target[] }>('/api/v1/targets');
        for (const t of activeTargets) {
          if (Date.parse(t.lastScrape) <= since) continue;
          if (t.health !== 'up') throw new Error(`target ${t.scrapeUrl} is ${t.health}: ${t.lastError}`);
          const times = seen.get(t.scrapeUrl) ?? [];
          if (!times.includes(t.lastScrape)) seen.set(t.scrapeUrl, [...times, t.lastScrape]);
        }
        const done = activeTargets.length === targets.length && activeTargets.every((t) => (seen.get(t.scrapeUrl)?.length ?? 0) >= count);
        if (done) return;
        if (Date.now() > deadline) throw new Error(`not every target was scraped ${count} times: ${JSON.stringify(activeTargets)}`);
        await pause(200);
      }
    },
    stop: async (graceMs?: number) => {
      await server.stop(graceMs);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
