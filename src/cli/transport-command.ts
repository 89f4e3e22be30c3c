import { once } from 'node:events';
import { loadRules } from '../config/load.js';
import { startTransportEngine } from '../transport/engine.js';
import { configOption, parseCommandArgs } from './args.js';
import type { Command } from './commands.js';

const usage = 'usage: portcullis transport [--config FILE]\n';

/** `portcullis transport`: runs the bundled transport engine alone (no edge) until SIGTERM/SIGINT. */
export const transportCommand: Command = {
  summary: 'run the bundled transport engine alone: receive, queue, deliver',
  async run(args) {
    const parsed = parseCommandArgs('transport', usage, args, configOption);
    if (!parsed) return 2;
    const config = parsed.values.config;
    const engine = await startTransportEngine(await loadRules(config));
    process.stdout.write(`transport engine listening on ${engine.address.host}:${engine.address.port}, admin on ${engine.admin.host}:${engine.admin.port}\n`);
    await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
    await engine.close();
    return 0;
  },
};
