import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { loadRules } from '../config/load.js';
import { startTransportEngine } from '../transport/engine.js';
import type { Command } from './commands.js';

const usage = 'usage: portcullis transport [--config FILE]\n';

/** `portcullis transport`: runs the bundled transport engine alone (no edge) until SIGTERM/SIGINT. */
export const transportCommand: Command = {
  summary: 'run the bundled transport engine alone: receive, queue, deliver',
  async run(args) {
    let config: string;
    try {
      const { values } = parseArgs({ args, options: { config: { type: 'string', default: 'rules/portcullis.yaml' } }, strict: true });
      config = values.config;
    } catch (err) {
      process.stderr.write(`portcullis transport: ${(err as Error).message}\n${usage}`);
      return 2;
    }
    const engine = await startTransportEngine(await loadRules(config));
    process.stdout.write(`transport engine listening on ${engine.address.host}:${engine.address.port}, admin on ${engine.admin.host}:${engine.admin.port}\n`);
    await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
    await engine.close();
    return 0;
  },
};
