/** The edge's record log: counted in the metrics, its troubles logged as warnings (docs/records.md). */
import type { Rules } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { RecordLog } from '../observability/record-log.js';
import type { Clock } from '../runtime/clock.js';

export function openRecordLog(config: NonNullable<Rules['records']>, metrics: Metrics, logger: Logger, clock: Clock): Promise<RecordLog> {
  return RecordLog.open(config, {
    clock,
    count: (outcome, n) => metrics.records(outcome, n),
    warn: (detail) => logger.warn({ records: config.path }, detail),
  });
}
