/**
 * Group commit of received records: a record held whole in memory is committed alone when no group is
 * being written, so one session pays exactly one sync before its 250 and waits for nothing else; a
 * record committed while a group is being written joins the next group, which is written into one free
 * slot in one call, back to back, when the running one ends, and synced once. Each member's commit
 * resolves only after that sync, so no client hears 250 before its record is durable, and concurrent
 * arrivals share a slot and its fdatasync. A group that fails fails every member (each answered 4xx)
 * and frees its own slot only. The same pattern as `fsyncDir` in `storage/durable-write.ts`.
 */
import type { SlotPlace, SlotPool } from './slot-pool.js';

/** Records per group at most: bounds what one slot holds and what a restart reads of it. */
const MAX_RECORDS = 64;
/** Bytes per group at most (a record alone may be larger; held records are at most 64 KiB of content). */
const MAX_BYTES = 1024 * 1024;

/** Records gathered for one slot, and the promise of the file they were made durable in. */
interface Group {
  records: Buffer[];
  bytes: number;
  durable: Promise<string>;
  settle: { resolve: (file: string) => void; reject: (err: unknown) => void };
}

function newGroup(): Group {
  let settle!: Group['settle'];
  const durable = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  return { records: [], bytes: 0, durable, settle };
}

export class SlotGroups {
  private writing = false;
  /** Groups gathering or full, in the order they will be written. */
  private readonly waiting: Group[] = [];

  constructor(private readonly pool: SlotPool) {}

  /** Makes a whole record (content, envelope, trailer) durable in a slot; resolves to where it is. */
  async commit(record: Buffer): Promise<SlotPlace> {
    let group = this.waiting.at(-1);
    if (group === undefined || group.records.length >= MAX_RECORDS || group.bytes + record.length > MAX_BYTES) {
      group = newGroup();
      this.waiting.push(group);
    }
    const offset = group.bytes;
    group.records.push(record);
    group.bytes += record.length;
    if (!this.writing) this.writeNext();
    return { file: await group.durable, offset };
  }

  private writeNext(): void {
    const group = this.waiting.shift();
    this.writing = group !== undefined;
    if (group === undefined) return;
    void this.write(group).then(group.settle.resolve, group.settle.reject).finally(() => this.writeNext());
  }

  private async write(group: Group): Promise<string> {
    const slot = await this.pool.take();
    try {
      await this.pool.seal(slot, group.records.length === 1 ? (group.records[0] as Buffer) : Buffer.concat(group.records, group.bytes), 0);
    } catch (err) {
      // Its records are not kept (every member is told so), and no other group's record is in this slot.
      await this.pool.release(slot.file).catch(() => undefined);
      throw err;
    }
    return slot.file;
  }
}
