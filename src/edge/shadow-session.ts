/**
 * The shadow rule set (`shadow.rules`, docs/shadow.md) judging a session beside the live one, with no
 * effect on it: every decision the live policy takes is taken again by the candidate's own
 * SessionPolicy, then counted (`portcullis_shadow_total`) and, when the two actions differ, logged
 * with the session id. The candidate's decisions run one after another on a chain of their own that
 * the session never waits on: a candidate whose DNS lookups are slower is compared when they complete.
 */
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import type { SessionPolicy } from '../policy/session-policy.js';
import { replyLine, type Action, type Verdict } from '../policy/verdict.js';

/** Where a shadow session reports, and the names its log lines carry. */
export interface ShadowContext {
  session: string;
  listener: string;
  logger: Logger;
  metrics: Metrics;
}

/** The action as the metric labels it: the end of DATA passed on to the back end is an acceptance. */
function labelOf(action: Action): Action {
  return action === 'relay' ? 'accept' : action;
}

function refuses(action: Action): boolean {
  return action !== 'accept' && action !== 'continue';
}

function side(v: Verdict): Record<string, unknown> {
  return { action: labelOf(v.action), step: v.step, check: v.check, ...(v.rule !== undefined ? { rule: v.rule } : {}), reply: v.code > 0 ? replyLine(v) : '' };
}

export class ShadowSession {
  private readonly policy: SessionPolicy;
  private chain: Promise<void> = Promise.resolve();
  /** The candidate would have closed the connection: nothing after that can be compared. */
  private closed = false;
  /** The candidate refused this transaction's MAIL FROM: its RCPT TO and DATA would not have happened. */
  private refusedSender = false;

  constructor(
    engine: PolicyEngine,
    clientIp: string,
    private readonly context: ShadowContext,
  ) {
    this.policy = engine.session(context.listener, clientIp);
  }

  connect(live: Verdict): void {
    this.judge(live, undefined, () => {
      const v = this.policy.connect();
      if (v.action === 'reject') this.closed = true;
      return v;
    });
  }

  helo(name: string, ourAddress?: string): void {
    this.then(() => void this.policy.helo(name, ourAddress));
  }

  mailFrom(address: string, live: Verdict): void {
    this.then(() => (this.refusedSender = false));
    this.judge(live, address, () => {
      const v = this.policy.mailFrom(address);
      if (refuses(v.action) && v.action !== 'archive') this.refusedSender = true;
      return v;
    });
  }

  rcptTo(address: string, live: Verdict): void {
    this.judge(live, address, () => this.policy.rcptTo(address), true);
  }

  headerFrom(address: string | undefined, live: Verdict): void {
    this.judge(live, address, () => this.policy.headerFrom(address), true);
  }

  /** RSET, a new HELO, the end of a message: the candidate forgets the transaction too. */
  resetTransaction(): void {
    this.then(() => {
      this.refusedSender = false;
      this.policy.resetTransaction();
      // Nobody reads the candidate's trace: compare() has used each verdict as it came.
      this.policy.forgetJudged();
    });
  }

  private judge(live: Verdict, address: string | undefined, decide: () => Verdict | Promise<Verdict>, inTransaction = false): void {
    this.then(async () => {
      if (inTransaction && this.refusedSender) return;
      const shadow = await decide();
      if (shadow.action === 'drop') this.closed = true;
      this.compare(live, shadow, address);
    });
  }

  private then(step: () => unknown): void {
    this.chain = this.chain
      .then(async () => {
        if (!this.closed) await step();
      })
      .catch((err: unknown) => {
        // A failing candidate must never touch the session; it is logged so that it is seen.
        this.context.logger.warn({ session: this.context.session, err: (err as Error).message }, 'shadow rule set failed to judge');
      });
  }

  private compare(live: Verdict, shadow: Verdict, address: string | undefined): void {
    const l = labelOf(live.action);
    const s = labelOf(shadow.action);
    // The decision that makes the difference: the candidate's refusal, else the live one.
    const decider = refuses(s) ? shadow : live;
    this.context.metrics.shadow(decider.step, decider.rule, l, s);
    if (l === s) return;
    this.context.logger.info(
      {
        event: 'shadow',
        session: this.context.session,
        client: this.policy.clientIp,
        listener: this.context.listener,
        ...(address !== undefined ? { address } : {}),
        live: side(live),
        shadow: side(shadow),
      },
      `shadow rule set disagrees at step ${decider.step}: live ${l}, shadow ${s}`,
    );
  }
}
