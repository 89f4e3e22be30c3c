import { Readable } from 'node:stream';
import { headerFromAddress, readHeaderSection } from '../../edge/header-from.js';
import type { PolicyEngine } from '../../policy/policy-engine.js';
import { wireTestsTrace } from '../../policy/protocol-tests.js';
import { STEPS, type StepCheck } from '../../policy/steps.js';
import { replyLine, traceEntry, type Action, type TraceEntry, type Verdict } from '../../policy/verdict.js';

/** The inputs of one simulated session. */
export interface SimulatedSession {
  ip: string;
  listener: string;
  helo: string;
  from: string;
  to: string[];
  headerFrom?: string;
  /** A whole message (`--message FILE`): its From: for step 15 and, where the listener authenticates senders, steps 15.1-15.3. */
  message?: Buffer;
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
  /**
   * The filters passed the command and the edge relays it: the client gets the back end's reply
   * (its code and text), so there is no `reply` of our own; `code` is the filters' pass.
   */
  relayed?: true;
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
  /** Every check, with its stage and, at RCPT TO, the index of the recipient in `rcpt`. */
  trace: (TraceEntry & { stage: Stage; recipient?: number })[];
  reportOnly: StageResult[];
  /** The header fields sender authentication would put on top of the message (Authentication-Results). */
  stamped?: string;
}

export type Stage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data';

/** Run one session through the real engine, stage by stage, stopping where the server would close. */
export async function simulate(engine: PolicyEngine, input: SimulatedSession): Promise<SimulationResult> {
  const reportOnly: StageResult[] = [];
  const policy = engine.session(input.listener, input.ip, (v) => {
    if (v.reportOnly) reportOnly.push(stage(v));
  });
  const trace: SimulationResult['trace'] = [];
  const wireTests = engine.compiled.listeners.get(input.listener)?.config.protocolTests;
  if (wireTests) for (const t of wireTestsTrace(wireTests)) trace.push({ ...t, stage: 'connect' });
  let seen = 0;
  const mark = (s: Stage, recipient?: number): void => {
    for (const t of policy.trace.slice(seen)) trace.push(recipient === undefined ? { ...t, stage: s } : { ...t, stage: s, recipient });
    seen = policy.trace.length;
  };
  const result: SimulationResult = {
    client: policy.clientIp,
    listener: input.listener,
    helo: input.helo,
    from: input.from,
    connect: stage(await policy.admit()),
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

  let mail = await policy.mail(input.from);
  if (mail.action === 'accept') {
    const spf = await policy.spf(input.from, input.helo);
    if (spf && spf.action !== 'accept') mail = spf;
  }
  result.mail = passedOn(mail, false);
  mark('mail');
  if (mail.action === 'drop') return result;

  result.rcpt = [];
  let accepted = 0;
  for (const address of input.to) {
    if (mail.action === 'reject' || mail.action === 'tempfail') {
      result.rcpt.push({ address, ...outOfOrder(STEPS.rcptOutOfOrder, 'need MAIL command') });
      continue;
    }
    const v = await policy.rcptTo(address);
    mark('rcpt', result.rcpt.length);
    // Under an archive verdict nothing is relayed: the edge answers every recipient itself.
    result.rcpt.push({ address, ...passedOn(v, policy.archive !== undefined) });
    if (v.action === 'accept') accepted += 1;
    if (v.action === 'drop') return result;
  }

  if (accepted === 0) {
    result.data = outOfOrder(STEPS.dataOutOfOrder, 'need RCPT command');
    return result;
  }
  const headerFrom = input.headerFrom ?? (input.message ? await messageFrom(input.message) : undefined);
  const data = policy.headerFrom(headerFrom);
  result.data = stage(data);
  if (data.action === 'relay' && policy.authenticatesSenders) {
    if (input.message) {
      const authed = await policy.authenticateMessage(Readable.from([input.message]), input.from, input.helo);
      result.data = stage(authed.verdict);
      if (authed.verdict.action === 'relay') result.stamped = authed.headers;
    } else {
      policy.trace.push(traceEntry(STEPS.dkim, 'not checked: no --message FILE (so neither are DMARC and ARC)'));
    }
  }
  mark('data');
  return result;
}

/** The From: address of a message file, read as the edge reads it. */
async function messageFrom(message: Buffer): Promise<string | undefined> {
  const section = await readHeaderSection(Readable.from([message])[Symbol.asyncIterator](), message.length + 1, () => undefined);
  return headerFromAddress(section.head);
}

/** A verdict as `check` shows it (and `explain`, from a record). */
export function stage(v: Verdict): StageResult {
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

/**
 * A command the filters pass goes on to the back end, whose reply the client gets instead of ours;
 * under an archive verdict nothing is relayed and the edge answers itself.
 */
export function passedOn(v: Verdict, archived: boolean): StageResult {
  const s = stage(v);
  if (v.action !== 'accept' || archived) return s;
  delete s.reply;
  s.relayed = true;
  return s;
}

/** The listener answers commands out of order itself, before any filter runs. */
function outOfOrder({ step, check }: StepCheck, what: string): StageResult {
  return { action: 'reject', code: 503, reply: `503 5.5.1 Error: ${what}`, step, check };
}
