/**
 * Requests between the primary and its worker processes over the cluster IPC channel: each request
 * names a kind and carries a payload; the other side answers it once, with a value or an error
 * message. Both directions use the same two message shapes.
 */

export interface Request {
  portcullis: 'request';
  id: number;
  kind: string;
  payload?: unknown;
}

export interface Reply {
  portcullis: 'reply';
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export type Handlers = Record<string, (payload: unknown) => unknown>;

export function isRequest(m: unknown): m is Request {
  return typeof m === 'object' && m !== null && (m as Request).portcullis === 'request';
}

export function isReply(m: unknown): m is Reply {
  return typeof m === 'object' && m !== null && (m as Reply).portcullis === 'reply';
}

/** Runs the handler a request names and sends its answer back through `send`. */
export async function answer(request: Request, handlers: Handlers, send: (reply: Reply) => void): Promise<void> {
  const handler = handlers[request.kind];
  try {
    if (!handler) throw new Error(`no handler for '${request.kind}'`);
    send({ portcullis: 'reply', id: request.id, ok: true, value: await handler(request.payload) });
  } catch (err) {
    send({ portcullis: 'reply', id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
}

/** Requests this side has sent and not yet had answered, each settled by its reply or its deadline. */
export class PendingRequests {
  private next = 1;
  private readonly waiting = new Map<number, { settle: (reply: Reply) => void; timer: NodeJS.Timeout }>();

  /** Sends a request through `send`; resolves with the reply, or an error reply after `timeoutMs`. */
  send(kind: string, payload: unknown, timeoutMs: number, send: (request: Request) => void): Promise<Reply> {
    const id = this.next++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle({ portcullis: 'reply', id, ok: false, error: `no answer to '${kind}' within ${timeoutMs} ms` }), timeoutMs);
      this.waiting.set(id, { settle: resolve, timer });
      send({ portcullis: 'request', id, kind, payload });
    });
  }

  /** Settles the request a reply answers; a late or unknown reply is ignored. */
  settle(reply: Reply): void {
    const w = this.waiting.get(reply.id);
    if (!w) return;
    this.waiting.delete(reply.id);
    clearTimeout(w.timer);
    w.settle(reply);
  }

  /** Settles every request still waiting with `error` (the other side is gone). */
  failAll(error: string): void {
    for (const id of [...this.waiting.keys()]) this.settle({ portcullis: 'reply', id, ok: false, error });
  }
}
