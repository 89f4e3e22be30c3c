/**
 * Loads a rule set: YAML parsed with line numbers, the schema applied, then the checks the schema
 * cannot express, each problem reported with its file:line.
 * Longer than 350 lines because the schema findings, the semantic checks and the file:line locator
 * share one finding shape and one path walk; the semantic checks are the part to move out next.
 */
import { access, readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { AddressList } from '../net/address-pattern.js';
import { AmbiguousAddressError, DirectoryModel } from '../directory/directory-model.js';
import { normalizeAddress, splitAddress } from '../net/address.js';
import { canonicalDomain, isDomainName } from '../net/domain.js';
import { endpointProblems, hostPortOfSmtpUrl } from '../net/endpoint.js';
import { IpList } from '../net/ip-list.js';
import { ConfigError, keyOf, type ConfigProblem } from './config-error.js';
import { dnsblScoringProblems } from './dnsbl-scoring-checks.js';
import { limitsProblems } from './limits-problems.js';
import { expandListFiles, type ListOrigins, type Origin } from './list-files.js';
import { RulesSchema, type Rules } from './schema.js';

type Path = readonly (string | number)[];

/**
 * The keys whose values are file-system paths (`[]` = every element of a list). The loader makes
 * them absolute against the rule set's folder, so no later code needs to know where it lay.
 */
export const PATH_KEYS: readonly string[] = [
  'listeners[].tls.key',
  'listeners[].tls.cert',
  'badmail',
  'log.protocolLog',
  'shadow.rules',
  'senderAuth.spool.dir',
  'records.path',
  'transport.dataDir',
  'transport.queueDir',
  'transport.mailboxDir',
  'transport.trackingLog',
];

/** Read, expand, validate and resolve a rule set; throws ConfigError naming file, line and key. */
export async function loadRules(path: string): Promise<Rules> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file: path, line: undefined, key: '', reason: `cannot read the rule set: ${(err as Error).message}` }]);
  }
  return loadRulesFromString(text, path);
}

/**
 * The same as loadRules for text already in hand. `fileName` names the rule set in messages, and
 * relative paths inside it (list files, directories, certificates) resolve against its folder.
 */
export async function loadRulesFromString(text: string, fileName: string): Promise<Rules> {
  const baseDir = dirname(resolve(fileName));
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ file: fileName, line: e.linePos?.[0]?.line, key: '', reason: `YAML: ${yamlReason(e.message)}` })),
    );
  }
  const locate = locator(doc, lineCounter, fileName);
  const problems: ConfigProblem[] = [];
  const origins: ListOrigins = new Map();
  const inlineOrigin = (key: string, i: number): Origin | undefined => locate(i < 0 ? pathOf(key) : [...pathOf(key), i]);
  // An unreadable list file is recorded and validation goes on, so that one run reports everything.
  const raw = await expandListFiles(doc.toJS() ?? {}, '', { configFile: fileName, baseDir, inlineOrigin, origins, problems });

  const at = (path: Path, reason: string): ConfigProblem => {
    const origin = originOf(origins, path) ?? locate(path);
    return { file: origin?.file ?? fileName, line: origin?.line, key: keyOf(path), reason };
  };
  const parsed = RulesSchema.safeParse(raw);
  if (!parsed.success) {
    const found = parsed.error.issues.flatMap((issue) => describeIssue(issue, [], raw));
    throw new ConfigError([...problems, ...found.map(([path, reason]) => at(path, reason))]);
  }
  const rules = resolvePaths(parsed.data, baseDir);
  problems.push(...semanticProblems(rules).map(([path, reason]) => at(path, reason)));
  problems.push(...(await unreadableFiles(rules)).map(([path, reason]) => at(path, reason)));
  if (problems.length) throw new ConfigError(problems);
  return rules;
}

/** The parser's message without its own position (the line is already in front) or code excerpt. */
function yamlReason(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
}

type Finding = [Path, string];
type Issue = z.core.$ZodIssue;

/** One zod issue as (path, reason) pairs an administrator can act on. */
function describeIssue(issue: Issue, prefix: Path, raw: unknown): Finding[] {
  const path = [...prefix, ...(issue.path as (string | number)[])];
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => [[...path, k], `unknown key '${k}'`]);
  if (issue.code === 'invalid_type' && valueAt(raw, path) === undefined) return [[path, `required key is missing (${plain(issue.message)})`]];
  if (issue.code === 'invalid_union') {
    // Report the alternative the value was evidently meant as: the one whose complaints are deepest.
    const scored = issue.errors.map((branch) => ({ branch, score: branch.reduce((s, i) => s + shapeMismatch(i), 0) }));
    const best = scored.sort((a, b) => a.score - b.score)[0];
    if (best && best.score < 100) return best.branch.flatMap((i) => describeIssue(i, path, raw));
    return [[path, plain(issue.message)]];
  }
  return [[path, plain(issue.message)]];
}

/** How badly a union alternative failed: a wrong type at its root means it was not what was meant at all. */
function shapeMismatch(issue: Issue): number {
  if (issue.path.length > 0) return 1;
  if (issue.code === 'invalid_type' || issue.code === 'invalid_value') return 100;
  return issue.code === 'unrecognized_keys' ? 10 : 1;
}

function plain(message: string): string {
  return message.replace(/^Invalid input: /, '');
}

function valueAt(raw: unknown, path: Path): unknown {
  let v = raw;
  for (const p of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** Checks zod cannot express: every list entry parses, names and addresses are unique, endpoints are sound. */
function semanticProblems(rules: Rules): Finding[] {
  const out: Finding[] = [];
  const listeners = new Map<string, number>();
  const endpoints = new Map<string, string>();
  rules.listeners.forEach((l, i) => {
    const base = ['listeners', i] as const;
    const prior = listeners.get(l.name);
    if (prior !== undefined) out.push([[...base, 'name'], `duplicate listener name '${l.name}' (also listeners[${prior}])`]);
    else listeners.set(l.name, i);
    out.push(...endpointFindings([...base, 'listen'], l.listen, 'any'));
    const other = endpoints.get(l.listen);
    if (other !== undefined) out.push([[...base, 'listen'], `${l.listen} is already the address of listener '${other}'`]);
    else endpoints.set(l.listen, l.name);
    out.push(...ipListProblems([...base, 'ipRestrictions', 'except'], l.ipRestrictions.except));
    out.push(...ipListProblems([...base, 'relayFrom'], l.relayFrom));
    if (l.proxyProtocol) out.push(...ipListProblems([...base, 'proxyProtocol', 'from'], l.proxyProtocol.from));
  });
  rules.acceptedDomains.forEach((d, i) => {
    if (!isDomainName(canonicalDomain(d))) out.push([['acceptedDomains', i], `'${d}' is not a domain name`]);
  });
  const cf = rules.connectionFilter;
  out.push(...ipListProblems(['connectionFilter', 'accept'], cf.accept));
  out.push(...ipListProblems(['connectionFilter', 'deny'], cf.deny));
  out.push(...addressListProblems(['connectionFilter', 'exceptions'], cf.exceptions));
  const ruleNames = new Map<string, number>();
  cf.rules.forEach((r, i) => {
    const prior = ruleNames.get(r.name);
    if (prior !== undefined) out.push([['connectionFilter', 'rules', i, 'name'], `duplicate DNSBL rule name '${r.name}' (also rules[${prior}])`]);
    else ruleNames.set(r.name, i);
    out.push(...matchProblems(['connectionFilter', 'rules', i, 'match'], r.match));
  });
  out.push(...dnsblScoringProblems(rules));
  out.push(...addressListProblems(['senderFilter', 'blocked'], rules.senderFilter.blocked));
  out.push(...addressListProblems(['recipientFilter', 'blocked'], rules.recipientFilter.blocked));
  const d = rules.directory;
  const named: [Path, string][] = [
    ...ownedAddresses(d),
    ...d.aliases.flatMap((a, i) => a.forwardTo.map((f, j): [Path, string] => [['directory', 'aliases', i, 'forwardTo', j], f])),
    ...d.groups.flatMap((g, i) => g.members.map((m, j): [Path, string] => [['directory', 'groups', i, 'members', j], m])),
  ];
  for (const [path, address] of named) {
    const reason = exactAddressProblem(address);
    if (reason) out.push([path, reason]);
  }
  if (!out.some(([path]) => path[0] === 'directory')) out.push(...directoryClashes(rules));
  if (rules.directory.forwardUnresolvedTo) out.push(...endpointFindings(['directory', 'forwardUnresolvedTo'], rules.directory.forwardUnresolvedTo, 'any'));
  out.push(...ipListProblems(['senderAuth', 'exempt', 'clients'], rules.senderAuth.exempt.clients));
  rules.dns.servers.forEach((s, i) => out.push(...endpointFindings(['dns', 'servers', i], s, 'ip')));
  if (rules.metrics) out.push(...endpointFindings(['metrics', 'listen'], rules.metrics.listen, 'any'));
  const backendUrl = rules.backend?.url;
  if (backendUrl !== undefined && backendUrl !== 'bundled') {
    out.push(...endpointFindings(['backend', 'url'], hostPortOfSmtpUrl(backendUrl), 'any'));
  }
  const t = rules.transport;
  out.push(...endpointFindings(['transport', 'listen'], t.listen, 'any'));
  out.push(...endpointFindings(['transport', 'admin', 'listen'], t.admin.listen, 'any'));
  out.push(...ipListProblems(['transport', 'allowFrom'], t.allowFrom));
  t.connectors.forEach((c, i) => {
    const hosts = c.smartHost === undefined ? [] : Array.isArray(c.smartHost) ? c.smartHost : [c.smartHost];
    hosts.forEach((h, j) => out.push(...endpointFindings(['transport', 'connectors', i, 'smartHost', ...(Array.isArray(c.smartHost) ? [j] : [])], h, 'any')));
  });
  out.push(...limitsProblems(rules, { ip: ipListProblems, address: addressListProblems }));
  return out;
}

/** Every address a directory entry owns, with where it is written. */
function ownedAddresses(d: Rules['directory']): [Path, string][] {
  return [
    ...d.addresses.map((a, i): [Path, string] => [['directory', 'addresses', i], a]),
    ...d.mailboxes.flatMap((m, i): [Path, string][] => [
      [['directory', 'mailboxes', i, 'address'], m.address],
      ...m.proxyAddresses.map((a, j): [Path, string] => [['directory', 'mailboxes', i, 'proxyAddresses', j], a]),
    ]),
    ...d.aliases.map((a, i): [Path, string] => [['directory', 'aliases', i, 'address'], a.address]),
    ...d.groups.map((g, i): [Path, string] => [['directory', 'groups', i, 'address'], g.address]),
  ];
}

/**
 * An address two directory entries claim, found by building the directory itself (so config check
 * and the running directory can never disagree on what clashes), reported at the later claim.
 */
function directoryClashes(rules: Rules): Finding[] {
  try {
    DirectoryModel.fromRules(rules);
    return [];
  } catch (err) {
    if (!(err instanceof AmbiguousAddressError)) throw err;
    const at = ownedAddresses(rules.directory)
      .filter(([, a]) => normalizeAddress(a) === err.address)
      .map(([path]) => path);
    const last = at.pop() ?? ['directory'];
    return [[last, `${err.message}${at.length ? ` (also ${at.map(keyOf).join(', ')})` : ''}`]];
  }
}

/** Every entry of an IP list that does not parse, each with its own index. */
function ipListProblems(path: Path, entries: readonly string[]): Finding[] {
  return eachBadEntry(entries, (e) => IpList.parse(e)).map(([i, reason]) => [[...path, i], reason]);
}

/** Every entry of an address-pattern list that does not parse, each with its own index. */
function addressListProblems(path: Path, entries: readonly string[]): Finding[] {
  return eachBadEntry(entries, (e) => AddressList.parse(e)).map(([i, reason]) => [[...path, i], reason]);
}

/** Runs a list parser past each failure, so that every bad entry is reported, not just the first. */
function eachBadEntry(entries: readonly string[], parse: (entries: readonly string[]) => unknown): [number, string][] {
  const bad: [number, string][] = [];
  for (let start = 0; start < entries.length && bad.length < 100; ) {
    try {
      parse(entries.slice(start));
      break;
    } catch (err) {
      const e = err as { index?: unknown; reason?: unknown; message: string };
      if (typeof e.index !== 'number') throw err;
      bad.push([start + e.index, `'${entries[start + e.index]}': ${typeof e.reason === 'string' ? e.reason : e.message}`]);
      start += e.index + 1;
    }
  }
  return bad;
}

/** The directory lists mailboxes that exist: single addresses, never patterns. */
function exactAddressProblem(address: string): string | undefined {
  try {
    AddressList.parse([address]);
  } catch (err) {
    return (err as Error).message;
  }
  const parts = splitAddress(address.trim());
  if (!parts || parts.local === '*' || address.trim().startsWith('@')) return `'${address}': the directory takes single addresses, not patterns`;
  return undefined;
}

/** A DNSBL match whose dotted quads are real addresses and can ever match a listing code. */
function matchProblems(path: Path, match: Rules['connectionFilter']['rules'][number]['match']): Finding[] {
  if (match === 'any') return [];
  const quad = (q: string): number[] | undefined => (isIPv4(q) ? q.split('.').map(Number) : undefined);
  if ('codes' in match) {
    return match.codes.flatMap((c, i): Finding[] => {
      const parts = quad(c);
      if (!parts) return [[[...path, 'codes', i], `'${c}' is not an IPv4 address`]];
      if (parts[0] !== 127) return [[[...path, 'codes', i], `'${c}' is outside 127.0.0.0/8: answers there are errors, never listings`]];
      return [];
    });
  }
  const [key, mask] = 'mask' in match ? (['mask', match.mask] as const) : (['maskAny', match.maskAny] as const);
  const parts = quad(mask);
  if (!parts) return [[[...path, key], `'${mask}' is not a dotted quad such as 0.0.0.6`]];
  if (parts.every((p) => p === 0)) return [[[...path, key], `mask 0.0.0.0 ${key === 'mask' ? 'matches every code; use match: any' : 'matches no code'}`]];
  return [];
}

/** Certificates must be readable now, not at the first STARTTLS. */
async function unreadableFiles(rules: Rules): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const [i, l] of rules.listeners.entries()) {
    if (!l.tls) continue;
    for (const k of ['key', 'cert'] as const) {
      await access(l.tls[k]).catch((err: Error) => out.push([['listeners', i, 'tls', k], `cannot read ${l.tls?.[k]}: ${err.message}`]));
    }
  }
  return out;
}

/** Paths in the rule set are relative to the rule set's own folder; make every PATH_KEYS value absolute, once, here. */
function resolvePaths(rules: Rules, baseDir: string): Rules {
  const copy = structuredClone(rules);
  for (const key of PATH_KEYS) resolveAt(copy, key.split('.'), baseDir);
  return copy;
}

function resolveAt(node: unknown, parts: string[], baseDir: string): void {
  if (typeof node !== 'object' || node === null) return;
  const [head = '', ...rest] = parts;
  const each = head.endsWith('[]');
  const obj = node as Record<string, unknown>;
  const name = each ? head.slice(0, -2) : head;
  const value = obj[name];
  if (each) {
    if (Array.isArray(value)) for (const item of value) resolveAt(item, rest, baseDir);
  } else if (rest.length > 0) {
    resolveAt(value, rest, baseDir);
  } else if (typeof value === 'string') {
    obj[name] = isAbsolute(value) ? value : resolve(baseDir, value);
  }
}

/** Finds the line of the YAML node at a path, falling back to the nearest ancestor that exists. */
function locator(doc: Document, lc: LineCounter, file: string): (path: Path) => Origin | undefined {
  const lineOf = (offset: number): Origin => ({ file, line: lc.linePos(offset).line });
  return (path) => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (!isNode(node) || !node.range) continue;
      // A key of a map is best shown at the key itself: its value may start on a later line, or be missing.
      const next = path[n];
      if (n < path.length && isMap(node) && typeof next === 'string') {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === next);
        if (pair && isNode(pair.key) && pair.key.range) return lineOf(pair.key.range[0]);
      }
      if (n === path.length && n > 0) {
        const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
        const last = path[n - 1];
        if (isMap(parent) && typeof last === 'string') {
          const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === last);
          if (pair && isNode(pair.key) && pair.key.range) return lineOf(pair.key.range[0]);
        }
      }
      return lineOf(node.range[0]);
    }
    return undefined;
  };
}

/** The list-file (or inline) origin of an entry of an expanded list, if the path points into one. */
function originOf(origins: ListOrigins, path: Path): Origin | undefined {
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

/** The endpoint's problems, each at the key it was read from. */
function endpointFindings(path: Path, value: string, hostKind: 'any' | 'ip'): Finding[] {
  return endpointProblems(value, hostKind).map((problem): Finding => [path, problem]);
}
