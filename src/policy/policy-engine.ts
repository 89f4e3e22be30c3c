import type { Rules } from '../config/schema.js';
import { compileRules, type CompiledRules } from './compiled-rules.js';
import { compileLimits, type Limits } from './limits.js';
import { SessionPolicy, type DecisionObserver, type SessionDeps } from './session-policy.js';

/** One rule set, compiled once; hands out a SessionPolicy per connection. */
export class PolicyEngine {
  readonly compiled: CompiledRules;
  private readonly limits: Limits;

  constructor(
    readonly rules: Rules,
    /** The ports, built by whoever composes this generation (the directory from the same rule set). */
    readonly deps: SessionDeps,
  ) {
    this.compiled = compileRules(rules);
    this.limits = compileLimits(rules, deps.limits);
  }

  /**
   * A per-connection state machine for one client on one listener; throws if the listener is unknown.
   * `deps` replaces the generation's ports for this one session (a recording or replaying lookup).
   */
  session(listenerName: string, clientIp: string, observe?: DecisionObserver, deps: SessionDeps = this.deps): SessionPolicy {
    const listener = this.compiled.listeners.get(listenerName);
    if (!listener) throw new Error(`unknown listener '${listenerName}'`);
    return new SessionPolicy(this.compiled, listener, clientIp, deps, observe, this.limits);
  }
}
