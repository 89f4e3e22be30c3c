import type { ConfigError } from './config-error.js';
import { loadRules } from './load.js';
import type { Rules } from './schema.js';

export type ReloadResult = { ok: true; rules: Rules } | { ok: false; error: ConfigError };

/** The rule set in force; a reload validates the new file fully before it replaces the old one. */
export class RulesStore {
  private rules: Rules;
  private readonly listeners: ((rules: Rules) => void)[] = [];

  private constructor(
    readonly path: string,
    rules: Rules,
  ) {
    this.rules = rules;
  }

  /** Load the rule set at `path`; throws ConfigError if it is broken. */
  static async open(path: string): Promise<RulesStore> {
    return new RulesStore(path, await loadRules(path));
  }

  /** The rule set in force now. */
  current(): Rules {
    return this.rules;
  }

  /** Re-read the file; a broken one is refused and the old rules stay in force. */
  async reload(): Promise<ReloadResult> {
    let next: Rules;
    try {
      next = await loadRules(this.path);
    } catch (err) {
      if (err instanceof Error && 'problems' in err) return { ok: false, error: err as ConfigError };
      throw err;
    }
    this.rules = next;
    for (const l of this.listeners) l(next);
    return { ok: true, rules: next };
  }

  /** Be told of every rule set that takes effect after a reload. */
  onChange(listener: (rules: Rules) => void): void {
    this.listeners.push(listener);
  }
}
