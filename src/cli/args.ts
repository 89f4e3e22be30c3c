import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parse a command's flags strictly; on a bad flag, print the error and usage and return undefined (exit 2). */
export function parseCommandArgs<const O extends Options, const P extends boolean = false>(
  command: string,
  usage: string,
  args: string[],
  options: O,
  allowPositionals?: P,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: (allowPositionals ?? false) as P });
  } catch (err) {
    process.stderr.write(`portcullis ${command}: ${(err as Error).message}\n${usage}`);
    return undefined;
  }
}

/** The `--config` flag every command takes. */
export const configOption = { config: { type: 'string', default: 'rules/portcullis.yaml' } } as const;
