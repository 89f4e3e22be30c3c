/** One thing wrong with a rule set, located by file, line and key. */
export interface ConfigProblem {
  file: string;
  line: number | undefined;
  /** Dotted path of the key, e.g. `listeners[0].ipRestrictions.except[1]`. */
  key: string;
  reason: string;
}

/** A rule set that cannot be used; its message lists every problem as `file:line: key: reason`. */
export class ConfigError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  readonly key: string;

  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    const first = problems[0];
    this.file = first?.file ?? '';
    this.line = first?.line;
    this.key = first?.key ?? '';
  }
}

/** `file:line: key: reason`, leaving out what is unknown. */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return p.key ? `${where}: ${p.key}: ${p.reason}` : `${where}: ${p.reason}`;
}

/** Render a path such as ['listeners', 0, 'listen'] as `listeners[0].listen`. */
export function keyOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}
