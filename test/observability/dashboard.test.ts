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
  fieldConfig?: { defaults?: { unit?: string } };
}

interface Variable {
  name: string;
  definition?: string;
}

const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

async function dashboard(): Promise<{ panels: Panel[]; templating: { list: Variable[] } }> {
  return JSON.parse(await fs.readFile('grafana/dashboard.json', 'utf8')) as {
    panels: Panel[];
    templating: { list: Variable[] };
  };
}

/**
 * Labels a panel may group by or show: each has a bounded set of values (configured names, fixed
 * outcomes, histogram buckets, the scrape target). Anything else could carry an address or grow
 * with traffic. (`limit`, of portcullis_rate_limited_total, is one of the ten rateLimits keys.)
 */
const BOUNDED_LABELS = new Set(['instance', 'listener', 'class', 'step', 'check', 'rule', 'action', 'report_only', 'zone', 'outcome', 'cached', 'state', 'queue', 'event', 'le', 'list', 'sign', 'limit', 'test', 'result', 'live', 'shadow', 'mechanism', 'reason']);

function flatten(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...flatten(p.panels ?? [])]);
}

/** The metric each series name in an expression belongs to (histogram series map to their histogram). */
function metricNames(expr: string, registered: Set<string>): string[] {
  return [...expr.matchAll(/\bportcullis_[a-z0-9_]+/g)].map(([name]) =>
    registered.has(name) ? name : name.replace(HISTOGRAM_SERIES, ''),
  );
}

test('every metric a dashboard panel queries is one the process exports', async () => {
  const registered = new Set(new Metrics({ processMetrics: true }).names());
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

test('a row per area, a unit on every panel, and every query scoped to the instance variable', async () => {
  const d = await dashboard();
  const rows = d.panels.filter((p) => p.type === 'row').map((p) => p.title ?? '');
  for (const area of [/^Edge/, /^DNSBL/, /relay/, /engine/]) assert.ok(rows.some((r) => area.test(r)), `no row for ${area} in ${rows.join(', ')}`);
  assert.equal(d.panels[0]?.type, 'row', 'every panel sits under a row');
  for (const p of flatten(d.panels).filter((x) => x.type !== 'row')) {
    assert.ok((p.fieldConfig?.defaults?.unit ?? '') !== '', `panel '${p.title}' has no unit`);
    for (const t of p.targets ?? []) {
      for (const [selector] of (t.expr ?? '').matchAll(/\bportcullis_[a-z0-9_]+(\{[^}]*\})?/g)) {
        assert.match(selector, /instance=~"\$instance"/, `panel '${p.title}' queries ${selector} on every instance`);
      }
    }
  }
});

test('the instance and listener variables exist, and the listener list follows the chosen instance', async () => {
  const vars = new Map((await dashboard()).templating.list.map((v) => [v.name, v]));
  assert.match(vars.get('instance')?.definition ?? '', /^label_values\(portcullis_sessions_total, instance\)$/);
  assert.match(vars.get('listener')?.definition ?? '', /^label_values\(portcullis_sessions_total\{instance=~"\$instance"\}, listener\)$/);
});

test('no panel groups by or shows a label that can grow without bound', async () => {
  for (const p of flatten((await dashboard()).panels)) {
    for (const t of (p.targets ?? []) as Array<{ expr?: string; legendFormat?: string }>) {
      const grouped = [...(t.expr ?? '').matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => (m[1] ?? '').split(','));
      const shown = [...(t.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1] ?? '');
      for (const label of [...grouped, ...shown].map((l) => l.trim()).filter((l) => l !== '')) {
        assert.ok(BOUNDED_LABELS.has(label), `panel '${p.title}' uses the label '${label}'`);
      }
    }
  }
});
