/**
 * A socket's writes in one turn of the event loop leave at the end of that turn (Node's check phase),
 * together with every other held socket's, instead of one system call the moment each is made.
 *
 * Why: on loopback (and any peer on the same host) a write that finds its reader asleep wakes it,
 * and a reader woken on this CPU preempts the writer. Lock-step traffic gives one write per reply and
 * per relayed command, and one turn answers tens of sessions (one `epoll_wait` returns tens of reads
 * under load), so the peers were woken, and the edge preempted, up to once per write. Written back to
 * back at the turn's end, the writes of a turn find a reader that is already awake. The bytes, their
 * order on each socket and the number of system calls stay the same: a socket's writes of one turn are
 * the ones its own code makes in that turn, and code that corks a socket itself (`cork` nests) keeps
 * its grouping.
 *
 * Whoever destroys a socket or hands its descriptor to another stream (TLS) in the turn it wrote must
 * `release` it first, or what it wrote is dropped or left behind; `end` sends what is held.
 */
import net from 'node:net';

const write = net.Socket.prototype.write;
const held: net.Socket[] = [];
const mine = new WeakSet<net.Socket>();
let scheduled = false;

/** Makes `socket` hold its writes of each turn until the turn's end. */
export function holdWritesPerTurn(socket: net.Socket): void {
  socket.write = heldWrite as typeof socket.write;
}

/** Sends what `socket` holds now (before a destroy or a TLS upgrade of the turn it wrote in). */
export function release(socket: net.Socket): void {
  if (!mine.delete(socket)) return;
  if (socket.writableCorked > 0) socket.uncork();
}

function heldWrite(this: net.Socket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  // Corked already: by this turn's first write, or by its own code, which uncorks it when it means to.
  if (this.writableCorked === 0 && !this.destroyed) hold(this);
  return (write as (this: net.Socket, chunk: unknown, encoding?: unknown, cb?: unknown) => boolean).call(this, chunk, encoding, cb);
}

function hold(socket: net.Socket): void {
  socket.cork();
  mine.add(socket);
  held.push(socket);
  if (!scheduled) {
    scheduled = true;
    setImmediate(releaseAll);
  }
}

function releaseAll(): void {
  scheduled = false;
  for (let i = 0; i < held.length; i++) release(held[i] as net.Socket);
  held.length = 0;
}
