/**
 * The checks the schema cannot express for rate limits, back pressure, greylisting and the state
 * store: list entries that do not parse, and settings under which the feature could never act.
 */
import type { Rules } from './schema.js';

type Path = readonly (string | number)[];
type Finding = [Path, string];

/** The list checkers of the loader, so each list entry is reported as every other list's is. */
export interface ListCheckers {
  ip(path: Path, entries: readonly string[]): Finding[];
  address(path: Path, entries: readonly string[]): Finding[];
}

export function limitsProblems(rules: Rules, lists: ListCheckers): Finding[] {
  const out: Finding[] = [];
  const r = rules.rateLimits;
  if (r) {
    out.push(...lists.ip(['rateLimits', 'exempt'], r.exempt));
    const set = [r.client, r.network, r.sender].some((scope) => Object.values(scope).some((v) => v !== undefined));
    if (!set) out.push([['rateLimits'], 'sets no limit: give at least one of client, network or sender a per-minute or concurrent limit, or remove rateLimits']);
  }
  const b = rules.backPressure;
  if (b && b.maxEventLoopLagMs === undefined && b.maxRssMb === undefined) {
    out.push([['backPressure'], 'sets no bound: give maxEventLoopLagMs, maxRssMb or both, or remove backPressure']);
  }
  const g = rules.greylisting;
  if (g) {
    out.push(...lists.ip(['greylisting', 'exemptClients'], g.exemptClients));
    out.push(...lists.address(['greylisting', 'exemptSenders'], g.exemptSenders));
    if (g.delaySec >= g.retryWindowHours * 3600) {
      out.push([['greylisting', 'delaySec'], `${g.delaySec} s is not shorter than retryWindowHours (${g.retryWindowHours} h): no retry could ever pass`]);
    }
  }
  return out;
}
