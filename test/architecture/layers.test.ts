/**
 * ARCHITECTURE.md's layers, kept: every import in src/ points down or sideways within its layer,
 * with the named exceptions, and no module grows past ~350 lines without saying why in its header.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const SRC = path.resolve(import.meta.dirname, '../../src');

/** Each top-level directory of src/ and its layer, from the top (cli) down to net, storage and runtime. */
const LAYER: Record<string, number> = {
  cli: 4,
  edge: 3,
  transport: 3,
  policy: 2,
  config: 1,
  directory: 1,
  dns: 1,
  // Sender authentication (SPF, DKIM, DMARC, ARC with mailauth): the SenderAuth port the policy asks.
  auth: 1,
  observability: 1,
  // Counters, greylisting and caches with a lifetime: memory, or Redis/Valkey shared across nodes.
  state: 1,
  // The archive both the edge and the engine write to; below both, it uses only storage and config.
  badmail: 1,
  net: 0,
  storage: 0,
  runtime: 0,
};

/** Sideways arrows the rules forbid within one layer: edge and transport speak SMTP only. */
const APART = new Set(['edge>transport', 'transport>edge']);

const MAX_LINES = 350;
const LONG_MARKER = /Longer than 350 lines because \S/;

export interface Import {
  /** Path relative to src/, e.g. `policy/session-policy.ts`. */
  file: string;
  specifier: string;
}

const IMPORT = /(?:^|\n)[ \t]*(?:import|export)[ \t\n](?:[^'";]*?[ \t\n]from[ \t\n]*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The module specifiers a source text imports or re-exports, static or dynamic. */
export function importsOf(text: string): string[] {
  return [...text.matchAll(IMPORT)].map((m) => (m[1] ?? m[2]) as string);
}

/** Why an import breaks the layer rules, or undefined when it keeps them. Packages are always allowed. */
export function violation({ file, specifier }: Import): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
  const from = file.split('/')[0] as string;
  const to = target.split('/')[0] as string;
  const where = `src/${file} imports '${specifier}'`;
  if (target.startsWith('..') || !target.includes('/')) return `${where}: outside the layered directories of src/`;
  const fromLayer = LAYER[from];
  const toLayer = LAYER[to];
  if (fromLayer === undefined) return `src/${file}: directory '${from}' is in no layer (add it to ARCHITECTURE.md and this test)`;
  if (toLayer === undefined) return `${where}: directory '${to}' is in no layer (add it to ARCHITECTURE.md and this test)`;
  if (from === to) return undefined;
  if (toLayer > fromLayer) return `${where}: ${from} may not import from ${to}, a layer above it`;
  if (APART.has(`${from}>${to}`)) return `${where}: ${from} and ${to} import nothing from each other`;
  return undefined;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [path.relative(SRC, full).split(path.sep).join('/')] : [];
  });
}

/** The comments before a module's first import or declaration. */
function header(text: string): string {
  const first = text.search(/^(?:import|export|const|let|function|class|interface|type)\b/m);
  return first < 0 ? text : text.slice(0, first);
}

describe('layers (ARCHITECTURE.md)', () => {
  const files = sourceFiles(SRC);

  it('every import in src/ points down, or sideways within its layer, and never between edge and transport', () => {
    const found = files.flatMap((file) =>
      importsOf(readFileSync(path.join(SRC, file), 'utf8')).flatMap((specifier) => violation({ file, specifier }) ?? []),
    );
    assert.deepEqual(found, []);
  });

  it('reads every form of import, and names the file and the import it refuses', () => {
    const text = [
      "import a from '../edge/a.js';",
      "import type {\n  B,\n  C,\n} from '../transport/b.js';",
      "export { d } from '../cli/d.js';",
      "import '../edge/side-effect.js';",
      "const e = await import('../transport/e.js');",
      " * import f from '../edge/in-a-comment.js'",
      "const g = 'import x from \"../edge/in-a-string.js\"';",
    ].join('\n');
    assert.deepEqual(importsOf(text), ['../edge/a.js', '../transport/b.js', '../cli/d.js', '../edge/side-effect.js', '../transport/e.js']);
    assert.equal(violation({ file: 'policy/x.ts', specifier: '../edge/a.js' }), "src/policy/x.ts imports '../edge/a.js': policy may not import from edge, a layer above it");
    assert.equal(violation({ file: 'edge/x.ts', specifier: '../transport/a.js' }), "src/edge/x.ts imports '../transport/a.js': edge and transport import nothing from each other");
    assert.equal(violation({ file: 'net/x.ts', specifier: '../runtime/clock.js' }), undefined);
    assert.equal(violation({ file: 'storage/x.ts', specifier: '../dns/a.js' }), "src/storage/x.ts imports '../dns/a.js': storage may not import from dns, a layer above it");
    assert.equal(violation({ file: 'dns/x.ts', specifier: '../config/schema.js' }), undefined);
    assert.equal(violation({ file: 'cli/check/x.ts', specifier: '../../transport/a.js' }), undefined);
    assert.match(violation({ file: 'newdir/x.ts', specifier: '../net/ip.js' }) ?? '', /directory 'newdir' is in no layer/);
    assert.match(violation({ file: 'net/x.ts', specifier: '../../test/support/a.js' }) ?? '', /outside the layered directories/);
    assert.equal(violation({ file: 'edge/x.ts', specifier: 'smtp-server' }), undefined);
  });

  it(`no module is over ${MAX_LINES} lines unless its header says why ("Longer than 350 lines because ...")`, () => {
    const long = files.flatMap((file) => {
      const text = readFileSync(path.join(SRC, file), 'utf8');
      const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
      return lines > MAX_LINES && !LONG_MARKER.test(header(text)) ? [`src/${file}: ${lines} lines`] : [];
    });
    assert.deepEqual(long, []);
  });
});
