import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ConfigProblem } from './config-error.js';

/** Where one entry of an expanded list came from. */
export interface Origin {
  file: string;
  line: number;
}

/** Key path (as `keyOf` renders it) → the origin of each entry of that list, by index. */
export type ListOrigins = Map<string, (Origin | undefined)[]>;

/** Whether a YAML value is a `{ file: path }` reference to a list file. */
export function isFileRef(v: unknown): v is { file: string } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { file?: unknown }).file === 'string';
}

/** Parse a list file: one entry a line; `#` starts a comment; blank lines are skipped. */
export function parseListFile(text: string, file: string): { entries: string[]; origins: Origin[] } {
  const entries: string[] = [];
  const origins: Origin[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const entry = raw.replace(/#.*$/, '').trim();
    if (!entry) return;
    entries.push(entry);
    origins.push({ file, line: i + 1 });
  });
  return { entries, origins };
}

/**
 * Replace every `{ file: path }` item of every list in `value` with the file's entries (paths relative
 * to `baseDir`), recording where each expanded entry came from.
 */
export async function expandListFiles(
  value: unknown,
  baseDir: string,
  key: string,
  inlineOrigin: (key: string, index: number) => Origin | undefined,
  origins: ListOrigins,
  problems: ConfigProblem[],
  configFile: string,
): Promise<unknown> {
  if (Array.isArray(value)) {
    if (!value.some(isFileRef)) {
      return Promise.all(value.map((v, i) => expandListFiles(v, baseDir, `${key}[${i}]`, inlineOrigin, origins, problems, configFile)));
    }
    const out: unknown[] = [];
    const where: (Origin | undefined)[] = [];
    for (const [i, item] of value.entries()) {
      if (!isFileRef(item)) {
        out.push(item);
        where.push(inlineOrigin(key, i));
        continue;
      }
      const path = resolve(baseDir, item.file);
      try {
        const parsed = parseListFile(await readFile(path, 'utf8'), path);
        out.push(...parsed.entries);
        where.push(...parsed.origins);
      } catch (err) {
        const at = inlineOrigin(key, i);
        problems.push({ file: configFile, line: at?.line, key: `${key}[${i}].file`, reason: `cannot read list file ${path}: ${(err as Error).message}` });
      }
    }
    origins.set(key, where);
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = await expandListFiles(v, baseDir, key ? `${key}.${k}` : k, inlineOrigin, origins, problems, configFile);
    }
    return out;
  }
  return value;
}
