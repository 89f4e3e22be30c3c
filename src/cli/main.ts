#!/usr/bin/env node
/** The `portcullis` command: dispatches to one module per sub-command. */
import { commands } from './commands.js';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    // No command is a usage error: the usage goes where errors go.
    process.stderr.write(usage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  const sub = rest[0];
  const compound = sub !== undefined ? commands[`${name} ${sub}`] : undefined;
  if (compound) return compound.run(rest.slice(1));
  const command = commands[name];
  if (!command) {
    process.stderr.write(`portcullis: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

function usage(): string {
  const lines = Object.entries(commands).map(([n, c]) => `  portcullis ${n.padEnd(14)} ${c.summary}`);
  return `Usage:\n${lines.join('\n')}\n`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`portcullis: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
