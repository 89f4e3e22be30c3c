import type { DnsblRuleConfig, DnsblScoringConfig, ListenerConfig, Rules } from '../config/schema.js';
import { AddressList } from '../net/address-pattern.js';
import { dnsblZones } from '../dns/dnsbl-runtime.js';
import { AcceptedDomains } from '../net/accepted-domains.js';
import { isIP } from 'node:net';
import { parseEndpoint } from '../net/endpoint.js';
import { IpList } from '../net/ip-list.js';
import type { AuthExemptions } from './sender-auth-checks.js';

/** A listener's settings with its address lists parsed once, at load. */
export interface CompiledListener {
  config: ListenerConfig;
  restrictions: IpList;
  relayFrom: IpList;
}

/** The rule set with every list parsed once, so no per-connection work repeats parsing. */
export interface CompiledRules {
  rules: Rules;
  listeners: Map<string, CompiledListener>;
  acceptList: IpList;
  denyList: IpList;
  exceptions: AddressList;
  blockedSenders: AddressList;
  blockedRecipients: AddressList;
  acceptedDomains: AcceptedDomains;
  dnsblRules: DnsblRuleConfig[];
  /** Step 9's scoring mode, when the rule set chose it over the first-match rules. */
  dnsblScoring: DnsblScoringConfig | undefined;
  /** Distinct DNSBL zones in rule order: one lookup per zone per session. */
  dnsblZones: string[];
  /** The listeners' own addresses (those not a wildcard), for the HELO check `notOurs`. */
  listenAddresses: string[];
  senderAuthExempt: AuthExemptions;
}

/** Parse every list in the rule set; throws on an entry that does not parse. */
export function compileRules(rules: Rules): CompiledRules {
  const listeners = new Map<string, CompiledListener>();
  for (const l of rules.listeners) {
    listeners.set(l.name, {
      config: l,
      restrictions: IpList.parse(l.ipRestrictions.except),
      relayFrom: IpList.parse(l.relayFrom),
    });
  }
  const cf = rules.connectionFilter;
  return {
    rules,
    listeners,
    acceptList: IpList.parse(cf.accept),
    denyList: IpList.parse(cf.deny),
    exceptions: AddressList.parse(cf.exceptions),
    blockedSenders: AddressList.parse(rules.senderFilter.blocked),
    blockedRecipients: AddressList.parse(rules.recipientFilter.blocked),
    acceptedDomains: new AcceptedDomains(rules.acceptedDomains),
    dnsblRules: cf.rules,
    dnsblScoring: cf.scoring,
    dnsblZones: dnsblZones(rules),
    listenAddresses: rules.listeners.map((l) => parseEndpoint(l.listen, 'listen').host).filter((h) => isIP(h) !== 0 && h !== '0.0.0.0' && h !== '::'),
    senderAuthExempt: { clients: IpList.parse(rules.senderAuth.exempt.clients), domains: rules.senderAuth.exempt.domains },
  };
}
