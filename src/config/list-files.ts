import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { ConfigProblem } from './config-error.js';

/** Where one entry of an expanded list came from; `file` is as the user would write it (see displayPath). */
export interface Origin {
  file: string;
  line: number | undefined;
}

/** Key path (as `keyOf` renders it) → the origin of each entry of that list, by expanded index. */
export type ListOrigins = Map<string, (Origin | undefined)[]>;

/** Whether a YAML value is a `{ file: path }` reference to a list file. */
export function isFileRef(v: unknown): v is { file: string } {
  return (
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { file?: unknown }).file === 'string'
  );
}

/**
 * Parse a list file: one entry a line; `#` at the start of a line or after white space starts a
 * comment (a `#` inside an entry, legal in a mail address, is kept); blank lines are skipped; inner
 * white space is kept, so `198.51.100.0 255.255.255.0` stays one entry.
 */
export function parseListFile(text: string, file: string): { entries: string[]; origins: Origin[] } {
  const entries: string[] = [];
  const origins: Origin[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const entry = raw.replace(/(^|\s)#.*$/, '').trim();
      if (!entry) return;
      entries.push(entry);
      origins.push({ file, line: i + 1 });
    });
  return { entries, origins };
}

/** What the loader needs to expand list files: where paths start and how to locate YAML nodes. */
export interface ExpandContext {
  /** The rule set's file as the user named it; list files are shown relative to it. */
  configFile: string;
  /** Absolute folder of the rule set: relative list-file paths resolve against it. */
  baseDir: string;
  /** The line of a YAML node, by the key path of the list and the index in it as written. */
  inlineOrigin: (key: string, index: number) => Origin | undefined;
  origins: ListOrigins;
  problems: ConfigProblem[];
}

/**
 * Replace every `{ file: path }` item of every list in `value` (or a list written wholly as
 * `{ file: path }`) with the file's entries, recording where each expanded entry came from.
 */
export async function expandListFiles(value: unknown, key: string, ctx: ExpandContext): Promise<unknown> {
  if (isFileRef(value) && key !== '') return expandList([value], key, ctx, true);
  if (Array.isArray(value)) {
    if (value.some(isFileRef)) return expandList(value, key, ctx, false);
    return Promise.all(value.map((v, i) => expandListFiles(v, `${key}[${i}]`, ctx)));
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await expandListFiles(v, key ? `${key}.${k}` : k, ctx);
    return out;
  }
  return value;
}

/** `whole`: the list was written as one `{ file }` rather than as a YAML sequence. */
async function expandList(items: unknown[], key: string, ctx: ExpandContext, whole: boolean): Promise<unknown[]> {
  const itemOrigin = (i: number): Origin | undefined => ctx.inlineOrigin(key, whole ? -1 : i);
  const out: unknown[] = [];
  const where: (Origin | undefined)[] = [];
  for (const [i, item] of items.entries()) {
    if (!isFileRef(item)) {
      out.push(item);
      where.push(itemOrigin(i));
      continue;
    }
    const shown = displayPath(ctx.configFile, item.file);
    try {
      const parsed = parseListFile(await readFile(resolve(ctx.baseDir, item.file), 'utf8'), shown);
      out.push(...parsed.entries);
      where.push(...parsed.origins);
    } catch (err) {
      const at = itemOrigin(i);
      const itemKey = whole ? `${key}.file` : `${key}[${i}].file`;
      ctx.problems.push({ file: at?.file ?? ctx.configFile, line: at?.line, key: itemKey, reason: `cannot read list file ${shown}: ${(err as Error).message}` });
    }
  }
  ctx.origins.set(key, where);
  return out;
}

/** A path from the rule set as the user would find it: relative to the folder of the config file as they named it. */
export function displayPath(configFile: string, path: string): string {
  return isAbsolute(path) ? path : join(dirname(configFile), path);
}
