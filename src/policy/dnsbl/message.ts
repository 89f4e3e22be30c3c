/** The values a DNSBL rule's message template may refer to. */
export interface DnsblMessageValues {
  ip: string;
  ruleName: string;
  /** The provider's display name; callers pass the zone when the rule sets none. */
  provider: string;
  txt?: string;
}

/**
 * The text of a DNSBL rejection: `%0` client address, `%1` rule name, `%2` provider, `%3` TXT
 * record (empty when none), `%%` a literal percent sign. Default: `<ip> has been blocked by <rule>`.
 */
export function formatDnsblMessage(template: string | undefined, values: DnsblMessageValues): string {
  if (template === undefined) return `${values.ip} has been blocked by ${values.ruleName}`;
  const table: Record<string, string> = {
    '%': '%',
    '0': values.ip,
    '1': values.ruleName,
    '2': values.provider,
    '3': values.txt ?? '',
  };
  // One left-to-right pass, so a substituted value containing `%1` is never expanded again. The TXT
  // comes from the provider's zone: control characters (CR/LF) would break the SMTP reply line.
  return template
    .replace(/%([%0-3])/g, (_m, key: string) => table[key] ?? '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x1f\x7f]+/g, ' ');
}
