import type { Rules } from '../config/schema.js';
import { DirectoryModel } from '../directory/directory-model.js';
import { compileRules, type CompiledRules } from './compiled-rules.js';
import type { Directory, DnsblLookup, ZoneHealth } from './interfaces.js';
import { SessionPolicy, type DecisionObserver } from './session-policy.js';

/** The engine's ports to the outside world. */
export interface PolicyDeps {
  dnsbl: DnsblLookup;
  health: ZoneHealth;
  /** Who exists; defaults to the rule set's `directory`, the same model the bundled engine categorizes against. */
  directory?: Directory;
}

/** One rule set, compiled once; hands out a SessionPolicy per connection. */
export class PolicyEngine {
  readonly compiled: CompiledRules;
  private readonly directory: Directory;

  constructor(
    readonly rules: Rules,
    private readonly deps: PolicyDeps,
  ) {
    this.compiled = compileRules(rules);
    this.directory = deps.directory ?? DirectoryModel.fromRules(rules);
  }

  /** A per-connection state machine for one client on one listener; throws if the listener is unknown. */
  session(listenerName: string, clientIp: string, observe?: DecisionObserver): SessionPolicy {
    const listener = this.compiled.listeners.get(listenerName);
    if (!listener) throw new Error(`unknown listener '${listenerName}'`);
    return new SessionPolicy(
      this.compiled,
      listener,
      clientIp,
      { dnsbl: this.deps.dnsbl, health: this.deps.health, directory: this.directory },
      observe,
    );
  }
}
