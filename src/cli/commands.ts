/** The table of sub-commands; each lives in its own module. */
export interface Command {
  summary: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(args: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {};
