/** The table of sub-commands; each lives in its own module. */
import { checkCommand } from './check-command.js';
import { configCheckCommand } from './config-check-command.js';
import { dnsblCommand } from './dnsbl-command.js';
import { explainCommand } from './explain-command.js';
import { queueCommand } from './queue-command.js';
import { replayCommand } from './replay-command.js';
import { serveCommand } from './serve.js';
import { trackCommand } from './track-command.js';
import { transportCommand } from './transport-command.js';

export interface Command {
  summary: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(args: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {
  check: checkCommand,
  'config check': configCheckCommand,
  dnsbl: dnsblCommand,
  explain: explainCommand,
  queue: queueCommand,
  replay: replayCommand,
  serve: serveCommand,
  track: trackCommand,
  transport: transportCommand,
};
