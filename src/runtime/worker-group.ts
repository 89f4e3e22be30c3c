/**
 * The primary's side of `serve` with several worker processes (node:cluster): forks them, knows
 * which are ready, asks all of them at once, replaces one that dies, and stops them all. Each worker
 * accepts its connections from the shared listening sockets itself (see `start`).
 */
import cluster, { type Worker } from 'node:cluster';
import { answer, isReply, isRequest, PendingRequests, type Handlers, type Request } from './worker-channel.js';

/** What a worker asks of the primary; `worker` is the asker's cluster id. */
export type PrimaryHandlers = Record<string, (payload: unknown, worker: number) => unknown>;

/** One worker's answer to a request sent to the whole group. */
export interface WorkerReply {
  worker: number;
  pid: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export interface WorkerExit {
  worker: number;
  pid: number;
  code: number | null;
  signal: string | null;
}

export interface WorkerGroupOptions {
  count: number;
  /** Added to each worker's environment. */
  env: Record<string, string>;
  handlers: PrimaryHandlers;
  /** A ready worker died; a replacement is being started. */
  onReplace(exit: WorkerExit): void;
  /** How long a worker may take from fork to `ready`. */
  readyTimeoutMs: number;
}

/** The kind of request a worker sends once its listeners are open. */
export const READY = 'ready';
/** A replacement is forked this long after its predecessor died, so a crash loop does not spin a core. */
const RESTART_DELAY_MS = 500;

interface Member {
  worker: Worker;
  pending: PendingRequests;
  ready: boolean;
}

export class WorkerGroup {
  private readonly members = new Map<number, Member>();
  private stopping = false;
  private starting = true;
  private replacements = 0;

  private constructor(private readonly options: WorkerGroupOptions) {}

  /** Forks `count` workers and resolves once every one is ready; if one dies first, stops the rest and rejects. */
  static async start(options: WorkerGroupOptions): Promise<WorkerGroup> {
    // Node's default on Linux (SCHED_RR) has the primary accept every connection and pass it to a
    // worker over IPC: a message and a file descriptor each way, both processes woken, 0.10-0.17 ms
    // of the primary's CPU per connection on the 2-core machine, and a primary busy with the engine
    // or a scrape delays every accept. With SCHED_NONE each worker's event loop accepts from the shared socket, and the
    // kernel gives a connection to whichever is free first (docs/workers.md). Node's own
    // NODE_CLUSTER_SCHED_POLICY still decides when an operator sets it. Read at the first fork only.
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
    const group = new WorkerGroup(options);
    const started = Array.from({ length: options.count }, () => group.fork());
    try {
      await Promise.all(started);
      group.starting = false;
    } catch (err) {
      await group.stop('SIGTERM', 5000);
      throw err;
    }
    return group;
  }

  /** Workers ready now. */
  get size(): number {
    return [...this.members.values()].filter((m) => m.ready).length;
  }

  /** Workers started to replace one that died. */
  get replaced(): number {
    return this.replacements;
  }

  /** Asks every ready worker; each answers, errs, or times out on its own. A worker that exits meanwhile answers an error. */
  request(kind: string, payload: unknown, timeoutMs: number): Promise<WorkerReply[]> {
    const ready = [...this.members.values()].filter((m) => m.ready && m.worker.isConnected());
    return Promise.all(
      ready.map(async (m) => {
        // A channel that closes under the send answers through the callback, not as an 'error' event.
        const send = (r: Request): void => {
          m.worker.send(r, undefined, undefined, (err: Error | null) => {
            if (err) m.pending.settle({ portcullis: 'reply', id: r.id, ok: false, error: `worker ${m.worker.id}: ${err.message}` });
          });
        };
        const reply = await m.pending.send(kind, payload, timeoutMs, send);
        return { worker: m.worker.id, pid: m.worker.process.pid ?? 0, ok: reply.ok, value: reply.value, ...(reply.error !== undefined ? { error: reply.error } : {}) };
      }),
    );
  }

  /** Sends `signal` to every worker and resolves once all have exited; one still alive after `timeoutMs` is killed. */
  async stop(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    this.stopping = true;
    const exits = [...this.members.values()].map((m) => {
      const gone = new Promise<void>((resolve) => {
        if (m.worker.isDead()) resolve();
        else m.worker.process.once('exit', () => resolve());
      });
      m.worker.process.kill(signal);
      const timer = setTimeout(() => m.worker.process.kill('SIGKILL'), timeoutMs);
      return gone.finally(() => clearTimeout(timer));
    });
    await Promise.all(exits);
  }

  /** Forks one worker; resolves when it is ready, rejects if it exits or stays silent first. */
  private fork(): Promise<void> {
    const worker = cluster.fork(this.options.env);
    const member: Member = { worker, pending: new PendingRequests(), ready: false };
    this.members.set(worker.id, member);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`worker ${worker.id} was not ready within ${this.options.readyTimeoutMs} ms`));
        worker.process.kill('SIGKILL');
      }, this.options.readyTimeoutMs);
      const handlers: PrimaryHandlers = {
        ...this.options.handlers,
        [READY]: () => {
          member.ready = true;
          clearTimeout(timer);
          resolve();
        },
      };
      const asked: Handlers = Object.fromEntries(Object.entries(handlers).map(([kind, h]) => [kind, (p: unknown) => h(p, worker.id)]));
      worker.on('message', (m: unknown) => {
        if (isReply(m)) member.pending.settle(m);
        else if (isRequest(m)) {
          void answer(m, asked, (r) => {
            // A worker gone before its answer is sent has nobody left to read it.
            if (worker.isConnected()) worker.send(r, undefined, undefined, () => undefined);
          });
        }
      });
      worker.once('exit', (code, signal) => {
        clearTimeout(timer);
        this.members.delete(worker.id);
        member.pending.failAll(`worker ${worker.id} exited`);
        const exit = { worker: worker.id, pid: worker.process.pid ?? 0, code, signal };
        if (!member.ready) reject(new Error(`worker ${worker.id} exited before it was ready (code ${code}, signal ${signal})`));
        // A worker that fails before it is ready while the group starts fails the start; it is not replaced.
        if (this.stopping || (this.starting && !member.ready)) return;
        this.replacements++;
        this.options.onReplace(exit);
        setTimeout(() => {
          // A replacement that itself fails is replaced in turn by its own exit handler.
          if (!this.stopping) this.fork().catch(() => undefined);
        }, RESTART_DELAY_MS);
      });
    });
  }
}
