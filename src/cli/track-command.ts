import { loadRules } from '../config/load.js';
import { enginePaths } from '../transport/engine.js';
import { searchTrackingLog, type TrackingEvent } from '../transport/tracking-log.js';
import { configOption, parseCommandArgs } from './args.js';
import type { Command } from './commands.js';
import { table } from './queue-command.js';

const usage = 'usage: portcullis track [--id ID] [--sender ADDRESS] [--recipient ADDRESS] [--json] [--log FILE | --config FILE]\n';

function render(events: TrackingEvent[]): string {
  if (events.length === 0) return 'no matching events\n';
  return table(
    ['TIME', 'EVENT', 'ID', 'SENDER', 'RECIPIENTS', 'SIZE', 'CLIENT', 'REASON'],
    events.map((e) => [e.time, e.event, e.part ?? e.id, e.sender || '<>', e.recipients.join(','), String(e.size), e.clientIp ?? '-', e.reason ?? '']),
  );
}

/** `portcullis track`: searches the message tracking log by message id, sender or recipient. */
export const trackCommand: Command = {
  summary: 'search the message tracking log by message id, sender or recipient',
  async run(args) {
    const parsed = parseCommandArgs('track', usage, args, {
      ...configOption,
      log: { type: 'string' },
      id: { type: 'string' },
      sender: { type: 'string' },
      recipient: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    if (!parsed) return 2;
    const { values } = parsed;
    const file = values.log ?? enginePaths(await loadRules(values.config)).trackingLog;
    const events = await searchTrackingLog(file, {
      ...(values.id !== undefined ? { id: values.id } : {}),
      ...(values.sender !== undefined ? { sender: values.sender } : {}),
      ...(values.recipient !== undefined ? { recipient: values.recipient } : {}),
    });
    process.stdout.write(values.json ? `${JSON.stringify(events, null, 2)}\n` : render(events));
    return 0;
  },
};
