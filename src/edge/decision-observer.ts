/** What the edge does with each decision the policy takes: one verdict metric, one log line. */
import { logDecision, type Decision, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { STEPS } from '../policy/steps.js';
import { replyLine, type Verdict } from '../policy/verdict.js';

/** Where a decision was taken, as its log line names it. */
export interface DecisionPlace {
  session: string;
  client: string;
  listener: string;
  /** The envelope address the command being judged named, if any. */
  address: string | undefined;
}

/** Counts the decision, and logs it; `place` is asked only when the line is written. */
export function recordDecision(services: { logger: Logger; metrics: Metrics }, v: Verdict, place: () => DecisionPlace): void {
  services.metrics.verdict(v);
  if (v.check === STEPS.heloChecks.check) services.metrics.protocolTest('helo', v.action === 'continue' ? 'pass' : v.action === 'tempfail' ? 'tempfail' : 'fail');
  if (v.auth) services.metrics.authResult(v.auth);
  // Below level `info` (the benchmarks', and a quiet server's) the line's record is not even built.
  if (services.logger.isLevelEnabled('info')) logDecision(services.logger, decisionLine(v, place()));
}

function decisionLine(v: Verdict, where: DecisionPlace): Decision {
  return {
    session: where.session,
    client: where.client,
    listener: where.listener,
    step: v.step,
    check: v.check,
    ...(v.rule !== undefined ? { rule: v.rule } : {}),
    reply: v.code > 0 ? replyLine(v) : '',
    action: v.action,
    ...(v.reportOnly ? { reportOnly: true } : {}),
    ...(where.address !== undefined ? { address: where.address } : {}),
    ...(v.auth ? { authResult: v.auth.result } : {}),
  };
}
