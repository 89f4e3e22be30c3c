import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { parse } from 'yaml';
import { Metrics } from '../../src/observability/metrics.js';

interface Panel {
  title?: string;
  type: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

async function dashboard(): Promise<{ panels: Panel[]; templating: { list: Array<{ definition?: string }> } }> {
  return JSON.parse(await fs.readFile('grafana/dashboard.json', 'utf8')) as {
    panels: Panel[];
    templating: { list: Array<{ definition?: string }> };
  };
}

function flatten(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...flatten(p.panels ?? [])]);
}

/** The metric each series name in an expression belongs to (histogram series map to their histogram). */
function metricNames(expr: string, registered: Set<string>): string[] {
  return [...expr.matchAll(/\bportcullis_[a-z0-9_]+/g)].map(([name]) =>
    registered.has(name) ? name : name.replace(HISTOGRAM_SERIES, ''),
  );
}

test('every metric a dashboard panel queries is one the Metrics class registers', async () => {
  const registered = new Set(new Metrics().names());
  const d = await dashboard();
  const exprs = flatten(d.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
  exprs.push(...d.templating.list.map((v) => v.definition ?? ''));
  assert.ok(exprs.length > 10);
  for (const expr of exprs.filter((e) => e !== '')) {
    for (const name of metricNames(expr, registered)) {
      assert.ok(registered.has(name), `dashboard uses ${name}, which Metrics does not register (in: ${expr})`);
    }
  }
});

test('every registered metric has at least one panel, and every panel has a query', async () => {
  const registered = new Set(new Metrics().names());
  const panels = flatten((await dashboard()).panels).filter((p) => p.type !== 'row');
  const used = new Set<string>();
  for (const p of panels) {
    assert.ok((p.targets ?? []).some((t) => (t.expr ?? '') !== ''), `panel '${p.title}' has no query`);
    for (const t of p.targets ?? []) for (const n of metricNames(t.expr ?? '', registered)) used.add(n);
  }
  for (const name of registered) assert.ok(used.has(name), `no panel shows ${name}`);
});

test('provisioning files are valid YAML and point at the dashboard and a Prometheus source', async () => {
  const ds = parse(await fs.readFile('grafana/provisioning/datasources/prometheus.yaml', 'utf8')) as {
    datasources: Array<{ type: string }>;
  };
  assert.equal(ds.datasources[0]?.type, 'prometheus');
  const boards = parse(await fs.readFile('grafana/provisioning/dashboards/portcullis.yaml', 'utf8')) as {
    providers: Array<{ type: string; options: { path: string } }>;
  };
  assert.equal(boards.providers[0]?.type, 'file');
  assert.match(boards.providers[0]?.options.path ?? '', /^\/var\/lib\/grafana\/dashboards/);
});
