import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config-error.js';
import { loadRules } from '../config/load.js';
import type { Command } from './commands.js';

/** `portcullis config check`: validate a rule set without starting anything. */
export const configCheckCommand: Command = {
  summary: 'validate a rule set; errors name the file, line and key',
  async run(args) {
    let config: string;
    try {
      config = parseArgs({ args, options: { config: { type: 'string', default: 'rules/portcullis.yaml' } }, strict: true }).values.config;
    } catch (err) {
      process.stderr.write(`portcullis config check: ${(err as Error).message}\nusage: portcullis config check [--config FILE]\n`);
      return 2;
    }
    try {
      const r = await loadRules(config);
      process.stdout.write(
        `OK: ${config}: ${r.listeners.length} listener(s), ${r.connectionFilter.rules.length} DNSBL rule(s), ` +
          `${r.connectionFilter.accept.length} accept / ${r.connectionFilter.deny.length} deny entries, ` +
          `${r.senderFilter.blocked.length} blocked sender(s), ${r.recipientFilter.blocked.length} blocked recipient(s)\n`,
      );
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
  },
};
