import { ConfigError } from '../config/config-error.js';
import { loadRules } from '../config/load.js';
import type { Rules } from '../config/schema.js';
import { loadShadowRules } from '../config/shadow-rules.js';
import { configOption, parseCommandArgs } from './args.js';
import type { Command } from './commands.js';

const usage = 'usage: portcullis config check [--config FILE]   (default rules/portcullis.yaml)\n';

/** `portcullis config check`: validate a rule set without starting anything; exit 0 if sound, 1 if not. */
export const configCheckCommand: Command = {
  summary: 'validate a rule set; errors name the file, line and key',
  async run(args) {
    const parsed = parseCommandArgs('config check', usage, args, { ...configOption, help: { type: 'boolean', short: 'h' } });
    if (!parsed) return 2;
    if (parsed.values.help) {
      process.stdout.write(usage);
      return 0;
    }
    const config = parsed.values.config;
    try {
      const rules = await loadRules(config);
      const shadow = await loadShadowRules(rules);
      process.stdout.write(`OK: ${config}: ${summarize(rules)}\n`);
      if (shadow && rules.shadow) process.stdout.write(`OK: shadow ${rules.shadow.rules}: ${summarize(shadow)}\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
  },
};

/** One line counting what the rule set holds, so an administrator sees their list files were read. */
export function summarize(r: Rules): string {
  const n = (count: number, one: string, many = `${one}s`): string => `${count} ${count === 1 ? one : many}`;
  const cf = r.connectionFilter;
  return [
    n(r.listeners.length, 'listener'),
    cf.scoring ? n(cf.scoring.lists.length, 'DNSBL scoring list') : n(cf.rules.length, 'DNSBL rule'),
    n(cf.accept.length, 'accept entry', 'accept entries'),
    n(cf.deny.length, 'deny entry', 'deny entries'),
    n(cf.exceptions.length, 'exception'),
    n(r.senderFilter.blocked.length, 'blocked sender'),
    n(r.recipientFilter.blocked.length, 'blocked recipient'),
    n(r.directory.addresses.length, 'directory address', 'directory addresses'),
    n(r.acceptedDomains.length, 'accepted domain'),
  ].join(', ');
}
