import type { Rules } from '../config/schema.js';
import { normalizeAddress } from '../net/address.js';
import { AcceptedDomains } from '../net/accepted-domains.js';

/** Who exists: the port step 12 checks. */
export interface Directory {
  has(address: string): boolean;
}

/** What a directory address resolves to. */
export type DirectoryEntry =
  | { kind: 'mailbox'; mailbox: string; quotaBytes?: number }
  | { kind: 'alias'; address: string; forwardTo: string[] }
  | { kind: 'group'; address: string; members: string[] };

/** Thrown when a directory is built with one address claimed by two entries (5.1.4 at load, never at delivery). */
export class AmbiguousAddressError extends Error {
  readonly enhanced = '5.1.4';
  constructor(readonly address: string) {
    super(`ambiguous address ${address}: claimed by more than one directory entry`);
  }
}

/**
 * The one directory the edge checks at step 12 and the engine categorizes against, built from
 * `rules.directory`: plain addresses and mailboxes (with proxy addresses), aliases and contacts that
 * forward, and distribution groups.
 */
export class DirectoryModel implements Directory {
  private constructor(
    private readonly entries: Map<string, DirectoryEntry>,
    private readonly accepted: AcceptedDomains,
    /** The smart host (host:port) that takes local addresses nobody owns, when one is set. */
    readonly forwardUnresolvedTo: string | undefined,
  ) {}

  /** Builds the model; throws AmbiguousAddressError if two entries claim one address. */
  static fromRules(rules: Rules): DirectoryModel {
    const entries = new Map<string, DirectoryEntry>();
    const add = (address: string, entry: DirectoryEntry): void => {
      const key = normalizeAddress(address);
      const prior = entries.get(key);
      if (prior !== undefined && prior !== entry) {
        // Listing a plain address twice is the same entry, not an ambiguity.
        if (prior.kind === 'mailbox' && entry.kind === 'mailbox' && prior.mailbox === key && entry.mailbox === key) return;
        throw new AmbiguousAddressError(key);
      }
      entries.set(key, entry);
    };
    const d = rules.directory;
    for (const a of d.addresses) add(a, { kind: 'mailbox', mailbox: normalizeAddress(a) });
    for (const m of d.mailboxes) {
      const entry: DirectoryEntry = { kind: 'mailbox', mailbox: normalizeAddress(m.address), quotaBytes: m.quotaBytes };
      for (const a of [m.address, ...m.proxyAddresses]) add(a, entry);
    }
    // Targets stay as written: one outside our domains is relayed with its local part as given (RFC 5321 2.4).
    for (const a of d.aliases) add(a.address, { kind: 'alias', address: normalizeAddress(a.address), forwardTo: [...a.forwardTo] });
    for (const g of d.groups) add(g.address, { kind: 'group', address: normalizeAddress(g.address), members: [...g.members] });
    return new DirectoryModel(entries, new AcceptedDomains(rules.acceptedDomains), d.forwardUnresolvedTo);
  }

  /** The entry that owns an address, if any. */
  lookup(address: string): DirectoryEntry | undefined {
    return this.entries.get(normalizeAddress(address));
  }

  /** Whether the address is in an accepted (authoritative) domain. */
  isLocal(address: string): boolean {
    return this.accepted.holds(address);
  }

  /**
   * Step 12: false exactly when the categorizer would fail this address with 5.1.1 — an address in an
   * accepted domain that no entry owns, with no forward-unresolved smart host. An address outside the
   * accepted domains is known only if an entry claims it (relay is the edge's question, not this one).
   */
  has(address: string): boolean {
    if (this.lookup(address) !== undefined) return true;
    return this.isLocal(address) && this.forwardUnresolvedTo !== undefined;
  }
}
