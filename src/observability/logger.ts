/** Structured logging: one JSON object a line (pino), and the one-line-per-decision record. */
import { pino, type Logger, type DestinationStream, type Level } from 'pino';

export type { Logger };

export type LogLevel = Level | 'silent';

export interface LoggerOptions {
  level: LogLevel;
  /** A file path (appended to), or a stream; standard output when absent. */
  destination?: string | DestinationStream;
}

/** Creates the process logger: JSON lines with an ISO time and the level as a word. */
export function createLogger(options: LoggerOptions): Logger {
  const destination =
    options.destination === undefined
      ? pino.destination({ dest: 1, sync: true })
      : typeof options.destination === 'string'
        ? // Synchronous so that the last lines before a crash or exit are on disk.
          pino.destination({ dest: options.destination, append: true, mkdir: true, sync: true })
        : options.destination;
  return pino(
    {
      level: options.level,
      base: { service: 'portcullis' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** One decision a filter took, as it is logged. Addresses belong here, never in metric labels. */
export interface Decision {
  /** The session id the listener gave the connection. */
  session: string;
  /** The client address the rules saw (the balancer's report under PROXY protocol). */
  client: string;
  listener: string;
  /** The guide's step number (0 for protocol checks). */
  step: number;
  check: string;
  rule?: string;
  /** The reply line written, e.g. `550 5.7.1 Access denied`; empty when nothing was written. */
  reply: string;
  action: string;
  /** A report-only rule matched: logged as it would have replied, but not enforced. */
  reportOnly?: boolean;
  /** The envelope address the decision was about, when there was one. */
  address?: string;
  /** A sender authentication step's result, e.g. `fail` (the step and check say which mechanism). */
  authResult?: string;
}

/** Writes exactly one log line for one decision. */
export function logDecision(logger: Logger, decision: Decision): void {
  logger.info({ event: 'decision', ...decision }, `step ${decision.step} ${decision.check}: ${decision.action}`);
}
