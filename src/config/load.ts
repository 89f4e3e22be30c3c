import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isNode, LineCounter, parseDocument, type Document } from 'yaml';
import { AddressList } from '../net/address-pattern.js';
import { IpList } from '../net/ip-list.js';
import { ConfigError, keyOf, type ConfigProblem } from './config-error.js';
import { expandListFiles, type ListOrigins, type Origin } from './list-files.js';
import { RulesSchema, type Rules } from './schema.js';

/** Read, expand, validate and resolve a rule set; throws ConfigError naming file, line and key. */
export async function loadRules(path: string): Promise<Rules> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: undefined, key: '', reason: `cannot read the rule set: ${(err as Error).message}` }]);
  }
  return loadRulesFromString(text, file);
}

/** The same as loadRules for text already in hand; relative paths resolve against `fileName`'s folder. */
export async function loadRulesFromString(text: string, fileName: string): Promise<Rules> {
  const file = resolve(fileName);
  const baseDir = dirname(file);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ file, line: e.linePos?.[0]?.line, key: '', reason: `YAML: ${e.message.split('\n')[0]}` })),
    );
  }
  const locate = locator(doc, lineCounter, file);
  const problems: ConfigProblem[] = [];
  const origins: ListOrigins = new Map();
  const raw = await expandListFiles(doc.toJS() ?? {}, baseDir, '', (key, i) => locate([...pathOf(key), i]), origins, problems, file);
  if (problems.length) throw new ConfigError(problems);

  const at = (path: readonly PropertyKey[], reason: string): ConfigProblem => {
    const origin = originOf(origins, path) ?? locate(path);
    return { file: origin?.file ?? file, line: origin?.line, key: keyOf(path), reason };
  };
  const parsed = RulesSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const keys = 'keys' in issue && Array.isArray(issue.keys) ? (issue.keys as string[]) : [];
        if (issue.code === 'unrecognized_keys' && keys.length) return at([...issue.path, keys[0]!], `unknown key (${keys.join(', ')})`);
        const missing = issue.code === 'invalid_type' && issue.message.endsWith('received undefined');
        return at(issue.path, missing ? 'required key is missing' : issue.message);
      }),
    );
  }
  const rules = parsed.data;
  problems.push(...semanticProblems(rules).map(([path, reason]) => at(path, reason)));
  if (problems.length) throw new ConfigError(problems);
  return resolvePaths(rules, baseDir);
}

/** Checks zod cannot express: every list entry parses, names are unique. */
function semanticProblems(rules: Rules): [PropertyKey[], string][] {
  const out: [PropertyKey[], string][] = [];
  const ipList = (path: PropertyKey[], entries: string[]): void => {
    try {
      IpList.parse(entries);
    } catch (err) {
      const e = err as { index?: number; reason?: string; message: string };
      out.push([e.index === undefined ? path : [...path, e.index], e.message]);
    }
  };
  const addressList = (path: PropertyKey[], entries: string[]): void => {
    try {
      AddressList.parse(entries);
    } catch (err) {
      const e = err as { index?: number; reason?: string; message: string };
      out.push([e.index === undefined ? path : [...path, e.index], e.message]);
    }
  };
  const names = new Set<string>();
  rules.listeners.forEach((l, i) => {
    if (names.has(l.name)) out.push([['listeners', i, 'name'], `duplicate listener name '${l.name}'`]);
    names.add(l.name);
    ipList(['listeners', i, 'ipRestrictions', 'except'], l.ipRestrictions.except);
    ipList(['listeners', i, 'relayFrom'], l.relayFrom);
    if (l.proxyProtocol) ipList(['listeners', i, 'proxyProtocol', 'from'], l.proxyProtocol.from);
  });
  const cf = rules.connectionFilter;
  ipList(['connectionFilter', 'accept'], cf.accept);
  ipList(['connectionFilter', 'deny'], cf.deny);
  addressList(['connectionFilter', 'exceptions'], cf.exceptions);
  addressList(['senderFilter', 'blocked'], rules.senderFilter.blocked);
  addressList(['recipientFilter', 'blocked'], rules.recipientFilter.blocked);
  addressList(['directory', 'addresses'], rules.directory.addresses);
  ipList(['transport', 'allowFrom'], rules.transport.allowFrom);
  const ruleNames = new Set<string>();
  cf.rules.forEach((r, i) => {
    if (ruleNames.has(r.name)) out.push([['connectionFilter', 'rules', i, 'name'], `duplicate DNSBL rule name '${r.name}'`]);
    ruleNames.add(r.name);
  });
  return out;
}

/** Paths in the rule set are relative to the rule set's own folder; make them absolute once, here. */
function resolvePaths(rules: Rules, baseDir: string): Rules {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const t = rules.transport;
  const dataDir = abs(t.dataDir);
  return {
    ...rules,
    listeners: rules.listeners.map((l) => (l.tls ? { ...l, tls: { key: abs(l.tls.key), cert: abs(l.tls.cert) } } : l)),
    badmail: abs(rules.badmail),
    log: rules.log.protocolLog ? { ...rules.log, protocolLog: abs(rules.log.protocolLog) } : rules.log,
    transport: {
      ...t,
      dataDir,
      ...(t.queueDir ? { queueDir: abs(t.queueDir) } : {}),
      ...(t.mailboxDir ? { mailboxDir: abs(t.mailboxDir) } : {}),
      ...(t.badmail ? { badmail: abs(t.badmail) } : {}),
      ...(t.trackingLog ? { trackingLog: abs(t.trackingLog) } : {}),
    },
  };
}

/** Finds the line of the YAML node at a path, falling back to the nearest ancestor that exists. */
function locator(doc: Document, lc: LineCounter, file: string): (path: readonly PropertyKey[]) => Origin | undefined {
  return (path) => {
    for (let n = path.length; n >= 0; n--) {
      const prefix = path.slice(0, n) as (string | number)[];
      const node = n === 0 ? doc.contents : doc.getIn(prefix, true);
      if (isNode(node) && node.range) {
        // For a key present in a map, point at the key itself rather than its value's start.
        if (n < path.length || n === 0) {
          const parent = node;
          if (isMap(parent) && typeof path[n] === 'string') {
            const pair = parent.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === path[n]);
            if (pair && isNode(pair.key) && pair.key.range) return { file, line: lc.linePos(pair.key.range[0]).line };
          }
        }
        return { file, line: lc.linePos(node.range[0]).line };
      }
    }
    return undefined;
  };
}

/** The list-file (or inline) origin of an entry of an expanded list, if the path points into one. */
function originOf(origins: ListOrigins, path: readonly PropertyKey[]): Origin | undefined {
  for (let n = path.length - 1; n > 0; n--) {
    const index = path[n];
    if (typeof index !== 'number') continue;
    const list = origins.get(keyOf(path.slice(0, n)));
    if (list) return list[index];
  }
  return undefined;
}

function pathOf(key: string): (string | number)[] {
  return key
    .split(/\.|\[(\d+)\]/)
    .filter((p) => p !== undefined && p !== '')
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}
