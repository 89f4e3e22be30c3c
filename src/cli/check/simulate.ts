import type { PolicyEngine } from '../../policy/policy-engine.js';
import { replyLine, type Action, type TraceEntry, type Verdict } from '../../policy/verdict.js';

/** The inputs of one simulated session. */
export interface SimulatedSession {
  ip: string;
  listener: string;
  helo: string;
  from: string;
  to: string[];
  headerFrom?: string;
}

/** What one SMTP stage came to, as the client would see it. */
export interface StageResult {
  action: Action;
  code?: number;
  reply?: string;
  step: number;
  check: string;
  rule?: string;
  reportOnly?: boolean;
  delayMs?: number;
}

export interface RcptResult extends StageResult {
  address: string;
}

/** The whole simulated session; a stage never reached (the connection was closed before it) is null. */
export interface SimulationResult {
  client: string;
  listener: string;
  helo: string;
  from: string;
  connect: StageResult;
  mail: StageResult | null;
  rcpt: RcptResult[] | null;
  data: StageResult | null;
  trace: (TraceEntry & { stage: Stage })[];
  reportOnly: StageResult[];
}

export type Stage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data';

/** Run one session through the real engine, stage by stage, stopping where the server would close. */
export async function simulate(engine: PolicyEngine, input: SimulatedSession): Promise<SimulationResult> {
  const reportOnly: StageResult[] = [];
  const policy = engine.session(input.listener, input.ip, (v) => {
    if (v.reportOnly) reportOnly.push(stage(v));
  });
  const trace: SimulationResult['trace'] = [];
  let seen = 0;
  const mark = (s: Stage): void => {
    for (const t of policy.trace.slice(seen)) trace.push({ ...t, stage: s });
    seen = policy.trace.length;
  };
  const result: SimulationResult = {
    client: policy.clientIp,
    listener: input.listener,
    helo: input.helo,
    from: input.from,
    connect: stage(policy.connect()),
    mail: null,
    rcpt: null,
    data: null,
    trace,
    reportOnly,
  };
  mark('connect');
  if (result.connect.action === 'drop') return result;
  policy.helo(input.helo);
  mark('helo');

  const mail = policy.mailFrom(input.from);
  result.mail = stage(mail);
  mark('mail');
  if (mail.action === 'drop') return result;

  result.rcpt = [];
  let accepted = 0;
  for (const address of input.to) {
    if (mail.action === 'reject') {
      result.rcpt.push({ address, ...outOfOrder(8, 'need MAIL command') });
      continue;
    }
    const v = await policy.rcptTo(address);
    mark('rcpt');
    result.rcpt.push({ address, ...stage(v) });
    if (v.action === 'accept') accepted += 1;
    if (v.action === 'drop') return result;
  }

  if (accepted === 0) {
    result.data = outOfOrder(14, 'need RCPT command');
    return result;
  }
  result.data = stage(policy.headerFrom(input.headerFrom));
  mark('data');
  return result;
}

function stage(v: Verdict): StageResult {
  const s: StageResult = { action: v.action, step: v.step, check: v.check };
  if (v.code > 0) {
    s.code = v.code;
    s.reply = replyLine(v);
  }
  if (v.rule !== undefined) s.rule = v.rule;
  if (v.reportOnly) s.reportOnly = true;
  if (v.delayMs) s.delayMs = v.delayMs;
  return s;
}

/** The listener answers commands out of order itself, before any filter runs. */
function outOfOrder(step: number, what: string): StageResult {
  return { action: 'reject', code: 503, reply: `503 5.5.1 Error: ${what}`, step, check: 'order of commands' };
}
