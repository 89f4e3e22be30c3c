import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { z } from 'zod';
import { commands } from '../../src/cli/commands.js';
import { RulesSchema } from '../../src/config/schema.js';

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
  defaultValue?: unknown;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** Every key path of the rule set schema, e.g. `listeners[].limits.maxRecipients`. */
function keys(schema: z.ZodType, prefix: string, out: string[]): string[] {
  const def = defOf(schema);
  if (def.innerType) return keys(def.innerType, prefix, out);
  if (def.type === 'pipe' && def.in) return keys(def.in, prefix, out);
  if (def.type === 'array' && def.element) return keys(def.element, `${prefix}[]`, out);
  if (def.type === 'union' && def.options) {
    for (const o of def.options) keys(o, prefix, out);
    return out;
  }
  if (def.type === 'object' && def.shape) {
    for (const [k, v] of Object.entries(def.shape)) {
      const path = prefix ? `${prefix}.${k}` : k;
      out.push(path);
      keys(v, path, out);
    }
  }
  return out;
}

/** The schema's own default of the key whose schema is `schema`: the outermost `.default()`, if any. */
function schemaDefault(schema: z.ZodType): { value: unknown } | undefined {
  for (let def = defOf(schema); ; ) {
    if (def.type === 'default') return { value: def.defaultValue };
    if (def.innerType) def = defOf(def.innerType);
    else if (def.type === 'pipe' && def.in) def = defOf(def.in);
    else return undefined;
  }
}

/** Key path -> schema default, for keys whose default is a plain string, number or boolean. */
function scalarDefaults(schema: z.ZodType, prefix: string, out: Map<string, string | number | boolean>): Map<string, string | number | boolean> {
  const def = defOf(schema);
  if (def.innerType) return scalarDefaults(def.innerType, prefix, out);
  if (def.type === 'pipe' && def.in) return scalarDefaults(def.in, prefix, out);
  if (def.type === 'array' && def.element) return scalarDefaults(def.element, `${prefix}[]`, out);
  if (def.type === 'union' && def.options) {
    for (const o of def.options) scalarDefaults(o, prefix, out);
    return out;
  }
  if (def.type === 'object' && def.shape) {
    for (const [k, v] of Object.entries(def.shape)) {
      const path = prefix ? `${prefix}.${k}` : k;
      const d = schemaDefault(v);
      if (d && ['string', 'number', 'boolean'].includes(typeof d.value)) out.set(path, d.value as string | number | boolean);
      scalarDefaults(v, path, out);
    }
  }
  return out;
}

test('the README documents every key of the rule set', async () => {
  const readme = await readFile('README.md', 'utf8');
  const missing = [...new Set(keys(RulesSchema, '', []))].filter((k) => !readme.includes(`\`${k}\``));
  assert.deepEqual(missing, [], 'keys missing from the README configuration reference');
});

test('every simple default in the README configuration tables is the schema default', async () => {
  const readme = await readFile('README.md', 'utf8');
  // Table rows: | `key` | default | meaning |
  const documented = new Map<string, string>();
  for (const m of readme.matchAll(/^\| `([^`]+)` \| ([^|]*) \|/gm)) documented.set(m[1]!, m[2]!.trim());
  const defaults = scalarDefaults(RulesSchema, '', new Map());
  assert.ok(defaults.size > 30, `found ${defaults.size} scalar defaults in the schema`);
  const wrong = [...defaults]
    .filter(([key, value]) => documented.get(key) !== `\`${String(value)}\``)
    .map(([key, value]) => `${key}: README ${documented.has(key) ? `says ${documented.get(key)}` : 'has no table row'}, schema default \`${String(value)}\``);
  assert.deepEqual(wrong, [], 'README defaults that differ from the schema');
});

test('the README documents every command and starts with the two commands a newcomer needs', async () => {
  const readme = await readFile('README.md', 'utf8');
  const missing = Object.keys(commands).filter((c) => !readme.includes(`portcullis ${c}`));
  assert.deepEqual(missing, []);
  const head = readme.split('\n').slice(0, 30).join('\n');
  assert.match(head, /npm ci && npm start/);
  assert.match(head, /npm test/);
});
