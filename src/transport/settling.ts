/**
 * What follows a local delivery's durability: once the Maildir file is renamed into `new/`, the record
 * that held the message may go (with the delivery's tracking line and metric) only after a sync of
 * `new/` that started after the rename has finished. The delivery worker does not wait for that sync:
 * the rest is settled here when the Maildir's batched sync (`BatchedDirSync`) ends, so one sync of
 * `new/` serves every delivery of its batch. Until then the record stays in the queue, held busy so
 * nothing works on it again; a crash meanwhile leaves it queued, and its repeated delivery finds the
 * file by its `_Q<part id>` mark instead of delivering twice.
 */
import type { BatchedDirSync } from '../storage/batched-dir-sync.js';

export class Settling {
  /** Records (by queue id) whose settling is under way. */
  private readonly byId = new Map<string, Promise<void>>();
  /** Messages (by root id) whose settling failed: their Maildir file may be there already. */
  private readonly unsettledRoots = new Set<string>();

  constructor(
    private readonly syncs: BatchedDirSync,
    private readonly onError: (err: Error, context: string) => void,
  ) {}

  /**
   * Runs `then` for record `id` once each of `dirs` has been synced after this call. If a sync or
   * `then` fails, `failed` runs instead (it reports and reschedules the record), and from then on the
   * message's next delivery looks for a file already delivered (`mayBeDelivered`).
   */
  after(id: string, rootId: string, dirs: string[], then: () => Promise<void>, failed: (err: Error) => Promise<void>): void {
    const work = Promise.all(dirs.map((dir) => this.syncs.after(dir)))
      .then(async () => {
        await then();
        this.unsettledRoots.delete(rootId);
      })
      .catch(async (err: unknown) => {
        this.mayHaveLeft(rootId);
        await failed(err as Error);
      })
      .catch((err: unknown) => this.onError(err as Error, `settling the delivery of ${id}`))
      .finally(() => this.byId.delete(id));
    this.byId.set(id, work);
  }

  /** The settling under way for a record (it must stay busy until it ends), if any. */
  of(id: string): Promise<void> | undefined {
    return this.byId.get(id);
  }

  /** A delivery of this message may have left its file in a Maildir without making it durable: the next one looks for it first. */
  mayHaveLeft(rootId: string): void {
    this.unsettledRoots.add(rootId);
  }

  /** Whether an earlier delivery of this message may have left its file without settling. */
  mayBeDelivered(rootId: string): boolean {
    return this.unsettledRoots.has(rootId);
  }

  /** Syncs every waiting batch now and resolves once everything settling has ended (the engine's stop). */
  async flush(): Promise<void> {
    await this.syncs.flush();
    while (this.byId.size > 0) await Promise.all(this.byId.values());
  }
}
