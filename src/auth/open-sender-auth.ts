/** The SenderAuth port for one rule set: mailauth on the edge's DNS settings, with its own answer cache. */
import type { Rules } from '../config/schema.js';
import { DnsClient } from '../dns/client.js';
import type { Clock } from '../runtime/clock.js';
import { CachedAuthResolver } from './auth-resolver.js';
import { MailauthSenderAuth } from './mailauth-sender-auth.js';

export function openSenderAuth(rules: Rules, clock?: Clock): MailauthSenderAuth {
  const client = new DnsClient({ servers: rules.dns.servers, timeoutMs: rules.dns.timeoutMs });
  const resolver = new CachedAuthResolver({ client, cacheSize: rules.dns.cacheSize, ...(clock ? { clock } : {}) });
  return new MailauthSenderAuth({ resolver, authservId: rules.senderAuth.authservId ?? rules.hostname, timeoutMs: rules.senderAuth.timeoutMs });
}
