import { loadRules } from '../config/load.js';
import { adminRequest } from '../transport/admin-client.js';
import { formatResult } from '../transport/delivery-result.js';
import type { DeleteNotice, MessageSummary, QueueSummary } from '../transport/admin-api.js';
import { configOption, parseCommandArgs } from './args.js';
import type { Command } from './commands.js';

const usage = `usage: portcullis queue list                  [--admin HOST:PORT | --config FILE] [--json]
       portcullis queue messages QUEUE
       portcullis queue show ID
       portcullis queue freeze QUEUE|ID
       portcullis queue unfreeze QUEUE|ID
       portcullis queue retry QUEUE|ID
       portcullis queue delete ID [--ndr]
`;

/** What `queue delete` says about the report of the undelivered recipients. */
const DELETE_NOTICES: Record<DeleteNotice, string> = {
  ndr: 'NDR sent to the sender',
  badmail: 'a bounce is never bounced: kept in Badmail',
  none: 'no NDR',
};

/** Table rows padded to the widest cell of each column. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function renderQueues(queues: QueueSummary[]): string {
  return table(
    ['QUEUE', 'STATE', 'COUNT', 'OLDEST', 'NEXT RETRY', 'LAST ERROR'],
    queues.map((q) => [q.name, q.state, String(q.count), q.oldest ?? '-', q.nextRetry ?? '-', q.lastError ?? '-']),
  );
}

function renderMessages(messages: MessageSummary[]): string {
  if (messages.length === 0) return 'no messages\n';
  return table(
    ['ID', 'RECEIVED', 'SENDER', 'RECIPIENTS', 'SIZE', 'TRIES', 'NEXT ATTEMPT', 'STATUS'],
    messages.map((m) => [m.id, m.receivedAt, m.sender || '<>', m.recipients.join(','), String(m.size), String(m.attempts), m.nextAttempt ?? '-', m.status]),
  );
}

function renderMessage(m: MessageSummary & { record: { deliveries: { address: string; status: string; result?: { code?: number; enhanced: string; text: string } }[] } }): string {
  const lines = [
    `id           ${m.id} (received as ${m.rootId})`,
    `queue        ${m.queue}`,
    `message-id   ${m.messageId ?? '-'}`,
    `sender       ${m.sender || '<>'}`,
    `recipients   ${m.recipients.join(', ') || '-'}`,
    `size         ${m.size}`,
    `received     ${m.receivedAt}`,
    `attempts     ${m.attempts}${m.nextAttempt ? `, next ${m.nextAttempt}` : ''}`,
    `status       ${m.status}`,
  ];
  for (const d of m.record.deliveries) {
    const r = d.result ? `  ${formatResult(d.result)}` : '';
    lines.push(`  ${d.address}  ${d.status}${r}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `portcullis queue`: the queue viewer, against a running engine's admin interface. */
export const queueCommand: Command = {
  summary: 'list, show, freeze, unfreeze, retry and delete queued mail of a running transport engine',
  async run(args) {
    const parsed = parseCommandArgs(
      'queue',
      usage,
      args,
      { ...configOption, admin: { type: 'string' }, json: { type: 'boolean', default: false }, ndr: { type: 'boolean', default: false } },
      true,
    );
    if (!parsed) return 2;
    const { values, positionals } = parsed;
    const [action = 'list', target] = positionals;
    const needsTarget = ['messages', 'show', 'freeze', 'unfreeze', 'retry', 'delete'];
    const problem = !['list', ...needsTarget].includes(action)
      ? `unknown action '${action}'`
      : needsTarget.includes(action) && target === undefined
        ? `'${action}' needs a queue or message id`
        : positionals.length > 2
          ? `unexpected '${positionals.slice(2).join(' ')}'`
          : undefined;
    if (problem) {
      process.stderr.write(`portcullis queue: ${problem}\n${usage}`);
      return 2;
    }
    const admin = values.admin ?? (await loadRules(values.config)).transport.admin.listen;
    const t = target ?? '';
    let answer: unknown;
    let text: string;
    switch (action) {
      case 'list':
        answer = await adminRequest(admin, 'GET', '/queues');
        text = renderQueues((answer as { queues: QueueSummary[] }).queues);
        break;
      case 'messages':
        answer = await adminRequest(admin, 'GET', `/queues/${encodeURIComponent(t)}/messages`);
        text = renderMessages((answer as { messages: MessageSummary[] }).messages);
        break;
      case 'show':
        answer = await adminRequest(admin, 'GET', `/messages/${encodeURIComponent(t)}`);
        text = renderMessage(answer as Parameters<typeof renderMessage>[0]);
        break;
      case 'delete':
        answer = await adminRequest(admin, 'POST', '/delete', { id: t, ndr: values.ndr });
        text = `deleted ${t} (${DELETE_NOTICES[(answer as { notice: DeleteNotice }).notice] ?? 'no NDR'})\n`;
        break;
      case 'retry': {
        answer = await adminRequest(admin, 'POST', '/retry', { target: t });
        text = `retrying ${(answer as { count: number }).count} message(s) of ${t} now\n`;
        break;
      }
      default:
        answer = await adminRequest(admin, 'POST', `/${action}`, { target: t });
        text = `${action === 'freeze' ? 'frozen' : 'unfrozen'}: ${(answer as { kind: string }).kind} ${t}\n`;
    }
    process.stdout.write(values.json ? `${JSON.stringify(answer, null, 2)}\n` : text);
    return 0;
  },
};
