import { ConfigError } from './config-error.js';
import { loadRules } from './load.js';
import type { Rules } from './schema.js';

export type ReloadResult = { ok: true; rules: Rules } | { ok: false; error: ConfigError };

/** The rule set in force; a reload validates the new file fully before it replaces the old one. */
export class RulesStore {
  private rules: Rules;
  private readonly listeners = new Set<(rules: Rules) => void>();
  /** Reloads run one after another, so a slow older read can never overwrite a newer rule set. */
  private queue: Promise<unknown> = Promise.resolve();

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

  /**
   * Re-read the file; a broken one is refused (the result carries why) and the old rules stay in
   * force. A good one takes effect, then every onChange listener is told, in registration order.
   */
  reload(): Promise<ReloadResult> {
    const next = this.queue.then(() => this.reloadNow());
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Be told of every rule set that takes effect after a reload; returns a function that stops it. */
  onChange(listener: (rules: Rules) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async reloadNow(): Promise<ReloadResult> {
    let next: Rules;
    try {
      next = await loadRules(this.path);
    } catch (err) {
      if (err instanceof ConfigError) return { ok: false, error: err };
      throw err;
    }
    this.rules = next;
    for (const l of this.listeners) l(next);
    return { ok: true, rules: next };
  }
}
