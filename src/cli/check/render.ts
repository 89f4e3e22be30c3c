import type { SimulationResult, Stage, StageResult } from './simulate.js';

const commandOf: Record<Stage, (r: SimulationResult, i: number) => string> = {
  connect: (r) => `connect from ${r.client} to listener "${r.listener}"`,
  helo: (r) => `EHLO ${r.helo}`,
  mail: (r) => `MAIL FROM:<${r.from}>`,
  rcpt: (r, i) => `RCPT TO:<${r.rcpt?.[i]?.address ?? ''}>`,
  data: () => 'DATA (end of message)',
};

/** The human-readable trace, in the guide's step numbers, stage by stage, like Exim's -bh. */
export function renderText(r: SimulationResult, zones: string[]): string {
  const out: string[] = [];
  for (const z of zones) out.push(`zone health: ${z}`);
  if (zones.length) out.push('');
  let rcptIndex = -1;
  let last: Stage | undefined;
  for (const t of r.trace) {
    if (t.stage !== last || (t.recipient !== undefined && t.recipient !== rcptIndex)) {
      if (last) out.push(reply(last, r, rcptIndex));
      if (t.recipient !== undefined) rcptIndex = t.recipient;
      out.push(`${commandOf[t.stage](r, rcptIndex)}`);
      last = t.stage;
    }
    out.push(`  step ${String(t.step).padStart(2)}  ${t.check}: ${t.outcome}`);
  }
  if (last) out.push(reply(last, r, rcptIndex));
  if (r.rcpt) {
    for (const x of r.rcpt.slice(rcptIndex + 1)) out.push(`RCPT TO:<${x.address}>`, `  -> ${x.reply ?? x.action}`);
  }
  if (r.data && last !== 'data') out.push('DATA', `  -> ${r.data.reply ?? r.data.action}`);
  for (const v of r.reportOnly) out.push(`report only: ${v.rule ?? `step ${v.step} ${v.check}`} would have ${v.reply ? `answered ${v.reply}` : 'allowlisted the client'}`);
  if (r.stamped) out.push('header fields added on top of the message:', ...r.stamped.trimEnd().split('\r\n').map((l) => `  ${l}`));
  return `${out.join('\n')}\n`;
}

function reply(stage: Stage, r: SimulationResult, rcptIndex: number): string {
  const s: StageResult | null | undefined =
    stage === 'connect' ? r.connect : stage === 'mail' ? r.mail : stage === 'rcpt' ? r.rcpt?.[rcptIndex] : stage === 'data' ? r.data : undefined;
  if (stage === 'helo') return '  -> 250';
  if (!s) return '  -> (not reached)';
  const closes = s.action === 'drop' ? ', then the connection is closed' : '';
  const delay = s.delayMs ? ` (after a ${s.delayMs} ms delay)` : '';
  if (s.action === 'relay') return '  -> relayed to the back end; the client gets the back end\'s reply';
  if (s.relayed) return `  -> ${s.code ?? ''}${delay} (the back end's reply is passed on)`;
  if (s.action === 'archive' && stage === 'data') return `  -> ${s.reply} (written to Badmail, delivered nowhere)`;
  return `  -> ${s.reply}${delay}${closes}`;
}
