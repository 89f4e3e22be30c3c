/**
 * SenderAuth with mailauth (SPF, DKIM, DMARC, ARC; by smtp-server's author) on the edge's own DNS.
 * The SPF result of MAIL FROM is reused for DMARC rather than evaluated again at the end of DATA.
 */
import { arc, dkimVerify, dmarc, spf, type DNSResolver } from 'mailauth';
import type { CachedAuthResolver } from './auth-resolver.js';
import type { AuthResultWord, DkimCheck, MessageAuth, MessageAuthInput, SenderAuth, SpfCheck } from './sender-auth.js';

export interface MailauthOptions {
  resolver: CachedAuthResolver;
  /** The authserv-id mailauth writes into its comments (`mx.example.test: domain of ...`). */
  authservId: string;
  /** Deadline for one check (all its lookups), `senderAuth.timeoutMs`. */
  timeoutMs: number;
}

const WORDS = new Set<string>(['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror', 'policy']);

/** mailauth's result word as RFC 8601 spells it (it says `temperr` in places). */
function word(result: string | undefined): AuthResultWord {
  if (result === 'temperr') return 'temperror';
  return result !== undefined && WORDS.has(result) ? (result as AuthResultWord) : 'none';
}

function unfolded(info: string): string {
  return info.replace(/\r?\n[ \t]*/g, ' ');
}

export class MailauthSenderAuth implements SenderAuth {
  constructor(private readonly options: MailauthOptions) {}

  /** mailauth's declared resolver type leaves out MX's objects, which its SPF code reads. */
  private resolver(): DNSResolver {
    return this.options.resolver.withDeadline(this.options.timeoutMs) as DNSResolver;
  }

  async spf({ sender, ip, helo }: { sender: string; ip: string; helo: string }): Promise<SpfCheck> {
    const r = await spf({
      sender,
      ip,
      helo,
      mta: this.options.authservId,
      resolver: this.resolver(),
    });
    return { result: word(r.status.result), domain: r.domain, identity: sender === '' ? 'helo' : 'mailfrom', info: unfolded(r.info) };
  }

  async message(input: MessageAuthInput): Promise<MessageAuth> {
    const resolver = this.resolver();
    const verified = await dkimVerify(input.message, { resolver, sender: input.sender });
    const dkim: DkimCheck[] = verified.results.map((r) => ({ result: word(r.status.result), domain: r.signingDomain || undefined, info: unfolded(r.info) }));
    const arcResult = await arc(verified.arc as Parameters<typeof arc>[0], { resolver });
    const from = verified.headerFrom;
    const dmarcResult =
      from.length === 1
        ? await dmarc({
            headerFrom: from,
            spfDomains: input.spf?.result === 'pass' ? [input.spf.domain] : [],
            dkimDomains: verified.results
              .filter((r) => r.status.result === 'pass')
              .map((r) => ({ id: r.id, domain: r.signingDomain, aligned: r.status.aligned, underSized: r.status.underSized })),
            arcResult,
            resolver,
          })
        : false;
    return {
      dkim: dkim.length > 0 ? dkim : [{ result: 'none', domain: undefined, info: 'dkim=none' }],
      arc: { result: word(arcResult.status.result), info: unfolded(arcResult.info ?? `arc=${word(arcResult.status.result)}`) },
      dmarc: dmarcResult
        ? {
            result: word(dmarcResult.status.result),
            domain: dmarcResult.status.header?.['from'] ?? dmarcResult.domain,
            policy: dmarcResult.policy === 'reject' || dmarcResult.policy === 'quarantine' || dmarcResult.policy === 'none' ? dmarcResult.policy : undefined,
            info: unfolded(dmarcResult.info),
          }
        : undefined,
    };
  }
}
