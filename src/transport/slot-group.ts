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

/** A record waiting in a group, and how its commit is answered. */
interface Member {
  record: Buffer;
  offset: number;
  resolve: (place: SlotPlace) => void;
  reject: (err: unknown) => void;
}

/** Records gathered for one slot. */
interface Group {
  members: Member[];
  bytes: number;
}

export class SlotGroups {
  private writing = false;
  /** Groups gathering or full, in the order they will be written. */
  private readonly waiting: Group[] = [];

  constructor(private readonly pool: SlotPool) {}

  /** Makes a whole record (content, envelope, trailer) durable in a slot; resolves to where it is. */
  commit(record: Buffer): Promise<SlotPlace> {
    let group = this.waiting.at(-1);
    if (group === undefined || group.members.length >= MAX_RECORDS || group.bytes + record.length > MAX_BYTES) {
      group = { members: [], bytes: 0 };
      this.waiting.push(group);
    }
    const joined = group;
    const done = new Promise<SlotPlace>((resolve, reject) => joined.members.push({ record, offset: joined.bytes, resolve, reject }));
    joined.bytes += record.length;
    if (!this.writing) this.writeNext();
    return done;
  }

  private writeNext(): void {
    const group = this.waiting.shift();
    this.writing = group !== undefined;
    if (group === undefined) return;
    void this.write(group)
      .then(
        (file) => answer(group.members, (m) => m.resolve({ file, offset: m.offset, records: group.members.length })),
        (err: unknown) => answer(group.members, (m) => m.reject(err)),
      )
      .finally(() => this.writeNext());
  }

  private async write(group: Group): Promise<string> {
    const slot = await this.pool.take();
    const records = group.members.map((m) => m.record);
    try {
      await this.pool.seal(slot, records.length === 1 ? (records[0] as Buffer) : Buffer.concat(records, group.bytes), 0);
    } catch (err) {
      // Its records are not kept (every member is told so), and no other group's record is in this slot.
      await this.pool.release(slot.file).catch(() => undefined);
      throw err;
    }
    return slot.file;
  }
}

/**
 * Answers a group's members one per turn of the event loop, in the order they came: each member's
 * commit then runs to its end (its record queued, its client answered, its `received` tracking line)
 * before the next one's begins, as when each had a sync of its own, so the queue never starts work on
 * a record whose receipt has not finished.
 */
function answer(members: Member[], settle: (m: Member) => void): void {
  const [first, ...rest] = members;
  if (first) settle(first);
  for (const m of rest) setImmediate(() => settle(m));
}
