/**
 * The candidate rule set `shadow.rules` names (docs/shadow.md): loaded and validated exactly as the
 * live one is, so its problems name its own file, line and key, and refused when it could not judge
 * every session the live set judges.
 */
import { ConfigError, type ConfigProblem } from './config-error.js';
import { loadRules } from './load.js';
import type { Rules } from './schema.js';

/** The candidate of `live`, or undefined when `live` names none; throws ConfigError on a bad one. */
export async function loadShadowRules(live: Rules): Promise<Rules | undefined> {
  if (!live.shadow) return undefined;
  const file = live.shadow.rules;
  const candidate = await loadRules(file);
  const problems: ConfigProblem[] = [];
  if (candidate.shadow) problems.push({ file, line: undefined, key: 'shadow', reason: 'a shadow rule set cannot name a shadow of its own' });
  // Sessions find their policy by listener name: a live listener the candidate lacks could not be shadowed.
  const names = new Set(candidate.listeners.map((l) => l.name));
  for (const l of live.listeners) {
    if (!names.has(l.name)) problems.push({ file, line: undefined, key: 'listeners', reason: `no listener '${l.name}': the candidate must have every live listener, by name` });
  }
  if (problems.length) throw new ConfigError(problems);
  return candidate;
}
