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
}

/** Every key path of the rule set schema, e.g. `listeners[].limits.maxRecipients`. */
function keys(schema: z.ZodType, prefix: string, out: string[]): string[] {
  const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
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

test('the README documents every key of the rule set', async () => {
  const readme = await readFile('README.md', 'utf8');
  const missing = [...new Set(keys(RulesSchema, '', []))].filter((k) => !readme.includes(`\`${k}\``));
  assert.deepEqual(missing, [], 'keys missing from the README configuration reference');
});

test('the README documents every command and starts with the two commands a newcomer needs', async () => {
  const readme = await readFile('README.md', 'utf8');
  const missing = Object.keys(commands).filter((c) => !readme.includes(`portcullis ${c}`));
  assert.deepEqual(missing, []);
  const head = readme.split('\n').slice(0, 30).join('\n');
  assert.match(head, /npm ci && npm start/);
  assert.match(head, /npm test/);
});
