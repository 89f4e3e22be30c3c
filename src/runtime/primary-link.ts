/** A worker process's side of the IPC channel to the primary (node:cluster): answers its requests, asks it things. */
import { answer, isReply, isRequest, PendingRequests, type Handlers } from './worker-channel.js';

export interface PrimaryLink {
  /** Asks the primary; resolves with its answer's value, rejects with its error. */
  ask(kind: string, payload?: unknown, timeoutMs?: number): Promise<unknown>;
}

/** Starts answering the primary's requests with `handlers`. Call once, in a worker. */
export function linkToPrimary(handlers: Handlers): PrimaryLink {
  // A send the closing channel refuses is not an 'error' event (it would end the process): the
  // request it carried times out, and an answer had nobody left to read it.
  const send = (m: object): void => {
    if (process.connected) process.send?.(m, undefined, undefined, () => undefined);
  };
  const pending = new PendingRequests();
  process.on('message', (m: unknown) => {
    if (isReply(m)) pending.settle(m);
    else if (isRequest(m)) void answer(m, handlers, send);
  });
  process.on('disconnect', () => pending.failAll('the primary process is gone'));
  return {
    async ask(kind, payload, timeoutMs = 10_000) {
      const reply = await pending.send(kind, payload, timeoutMs, send);
      if (!reply.ok) throw new Error(reply.error);
      return reply.value;
    },
  };
}
