import { BackendSchema, type Rules } from '../config/schema.js';
import { formatEndpoint } from '../net/endpoint.js';

/** Whether the rule set's back end is the bundled engine: no `backend` key, or `backend.url: bundled`. */
export function usesBundledEngine(rules: Rules): boolean {
  return rules.backend === undefined || rules.backend.url === 'bundled';
}

/** The rule set with its back end pointed at a running bundled engine (unchanged when it names another server). */
export function withBundledBackend(rules: Rules, engine: { address: { host: string; port: number } }): Rules {
  if (!usesBundledEngine(rules)) return rules;
  const url = `smtp://${formatEndpoint(engine.address)}`;
  // Through the schema, so that a rule set without `backend` gets the same defaults as one that has it.
  return { ...rules, backend: BackendSchema.parse({ ...rules.backend, url }) };
}
