import type { Rules } from '../config/schema.js';
import { normalizeAddress } from '../net/address.js';
import type { Directory } from './interfaces.js';

/** The directory as the rule set declares it: a set of addresses that exist. */
export class StaticDirectory implements Directory {
  private constructor(private readonly addresses: Set<string>) {}

  /** Build from `directory.addresses`. */
  static fromRules(rules: Rules): StaticDirectory {
    return new StaticDirectory(new Set(rules.directory.addresses.map((a) => normalizeAddress(a))));
  }

  has(address: string): boolean {
    return this.addresses.has(normalizeAddress(address));
  }
}
