/**
 * The members of a collection that come and go by the thousand a second (open connections, their
 * sessions), kept as a doubly linked list instead of a Set or a Map.
 *
 * A Set or Map keyed by connections kept closed connections alive through the young generation's
 * collections (scavenges) until the next full collection, so that each connection's objects were
 * copied and then promoted to the old generation, however briefly the connection lived. Measured on a
 * bare Node server (one `{ socket, 20 KB }` object per connection, added at accept and taken out at
 * close): with a Set or a Map ~all of each connection was promoted, with this list none. Our reading of
 * V8 (not measured): a hash table's backing store is replaced as the table grows, shrinks or fills
 * with deleted entries, and the store left behind keeps its entries and a link to its successor; once
 * one such store is in the old generation, a scavenge takes its pointers as roots, not knowing it is
 * dead. A removed entry here forgets its neighbours, so a dead entry points at nothing.
 */

/** A member's place in its list, given by `add` and handed back to `remove`. */
export interface OpenEntry<T> {
  readonly value: T;
}

interface Link<T> extends OpenEntry<T> {
  prev: Link<T> | undefined;
  next: Link<T> | undefined;
}

export class OpenList<T> implements Iterable<T> {
  private head: Link<T> | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(value: T): OpenEntry<T> {
    const link: Link<T> = { value, prev: undefined, next: this.head };
    if (this.head) this.head.prev = link;
    this.head = link;
    this.count += 1;
    return link;
  }

  /** Takes out the member `entry` stands for; an entry already taken out is left alone. */
  remove(entry: OpenEntry<T>): void {
    const link = entry as Link<T>;
    if (link.prev) link.prev.next = link.next;
    else if (this.head === link) this.head = link.next;
    else return;
    if (link.next) link.next.prev = link.prev;
    link.prev = undefined;
    link.next = undefined;
    this.count -= 1;
  }

  /** The members as they are now: what the caller does to them on the way (close, remove) does not change the walk. */
  [Symbol.iterator](): Iterator<T> {
    const members: T[] = [];
    for (let link = this.head; link; link = link.next) members.push(link.value);
    return members[Symbol.iterator]();
  }
}
