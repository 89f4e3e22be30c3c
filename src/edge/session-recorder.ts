/**
 * What one session's decision record is made of, gathered while it runs: the ports the engine used
 * (recorded), report-only matches, and the back end's answers; handed to the record log at close.
 */
import { rulesHash } from '../config/rules-hash.js';
import type { RecordLog } from '../observability/record-log.js';
import { recordOf } from '../policy/decision-record.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import { RecordingPorts } from '../policy/recorded-ports.js';
import type { SessionDeps, SessionPolicy } from '../policy/session-policy.js';
import type { Verdict } from '../policy/verdict.js';
import { systemClock } from '../runtime/clock.js';

export class SessionRecorder {
  readonly deps: SessionDeps;
  private readonly ports: RecordingPorts;
  private readonly reportOnly: Verdict[] = [];
  private readonly backend: number[] = [];
  private readonly start = systemClock.now();

  constructor(
    private readonly engine: PolicyEngine,
    private readonly log: RecordLog,
    private readonly peer?: string,
  ) {
    this.ports = new RecordingPorts(engine.deps.dnsbl, engine.deps.health, systemClock);
    this.deps = { ...engine.deps, dnsbl: this.ports.dnsbl, health: this.ports.health };
  }

  /** Every decision the session's policy reports; report-only matches are kept. */
  observe(v: Verdict): void {
    if (v.reportOnly) this.reportOnly.push(v);
  }

  /** The back end's code at the end of a message (or to MAIL FROM, when it refused the sender). */
  backendReplied(code: number): void {
    this.backend.push(code);
  }

  /** The session is over: its record goes to the log (queued, never waited for). */
  close(policy: SessionPolicy, id: string, listener: string): void {
    if (policy.events.length === 0) return;
    const record = recordOf(
      { id, start: new Date(this.start).toISOString(), end: new Date(systemClock.now()).toISOString(), listener, client: policy.clientIp, rules: rulesHash(this.engine.rules), ...(this.peer !== undefined ? { peer: this.peer } : {}) },
      policy.events,
      policy.trace,
      { reportOnly: this.reportOnly, dns: this.ports.answers, zones: this.ports.zones, backend: this.backend },
    );
    const addresses = policy.events.flatMap((e) => (e.kind === 'mail' || e.kind === 'rcpt' ? [e.address] : e.kind === 'data' && e.headerFrom ? [e.headerFrom] : []));
    this.log.write(record, addresses);
  }
}
