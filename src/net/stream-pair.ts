/**
 * Two connected in-memory ends that stand in for a TCP connection between two parts of one process
 * (the edge and the bundled engine under `serve`): they still carry SMTP, byte for byte, but no
 * system call, socket buffer or epoll wake-up lies between them.
 *
 * Each end is enough of a net.Socket for both users: smtp-server reads remoteAddress, localAddress,
 * their ports and readyState, arms its idle time-out with setTimeout, and ends, destroys, pipes and
 * corks the socket; the edge's back-end relay writes, corks and waits for 'drain'. Like a TCP socket
 * (allowHalfOpen off), an end whose peer has ended ends too once it has read the end, and both close;
 * destroying either end closes both, as a reset would.
 */
import { Duplex } from 'node:stream';

/** One side's socket address. */
export interface PairAddress {
  address: string;
  port: number;
}

type WriteCallback = (err?: Error | null) => void;

/** One end of a stream pair. */
export class PairedSocket extends Duplex {
  private peer!: PairedSocket;
  /** The write the peer's readable side could not take yet: its callback is held until the peer reads. */
  private heldWrite: WriteCallback | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleMs = 0;
  /** When bytes last went either way; the idle timer, when it fires early, waits out the rest. */
  private lastActive = 0;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(local: PairAddress, remote: PairAddress) {
    super({ allowHalfOpen: false });
    this.localAddress = local.address;
    this.localPort = local.port;
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
  }

  /** As net.Socket has it: smtp-server writes replies only while it is 'open'. */
  get readyState(): 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /**
   * As net.Socket's: 'timeout' is emitted after `ms` without bytes read or written (0 disarms), and
   * `onTimeout` is added as a one-time listener. smtp-server's idle time-out rests on it; unlike
   * net.Socket it fires once per call, as smtp-server arms it again itself when it wants more.
   */
  setTimeout(ms: number, onTimeout?: () => void): this {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (onTimeout) this.once('timeout', onTimeout);
    this.idleMs = ms;
    this.lastActive = Date.now();
    if (ms > 0) this.armIdle(ms);
    return this;
  }

  /** @internal Connects the two ends; streamPair() calls it once on each. */
  pairWith(peer: PairedSocket): void {
    this.peer = peer;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.deliver(chunk, callback);
  }

  /** Everything written while corked reaches the peer as one chunk, as one TCP write would. */
  override _writev(chunks: { chunk: Buffer }[], callback: WriteCallback): void {
    this.deliver(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _read(): void {
    // The peer's held write may go on now that this side wants more.
    const held = this.peer.heldWrite;
    if (held === undefined) return;
    this.peer.heldWrite = undefined;
    held();
  }

  override _final(callback: WriteCallback): void {
    this.peer.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: WriteCallback): void {
    clearTimeout(this.idleTimer);
    const held = this.heldWrite;
    this.heldWrite = undefined;
    held?.();
    if (!this.peer.destroyed) this.peer.destroy();
    callback(err);
  }

  private deliver(chunk: Buffer, callback: WriteCallback): void {
    const peer = this.peer;
    if (peer.destroyed) return callback(Object.assign(new Error('write to a closed stream pair'), { code: 'EPIPE' }));
    this.touch();
    peer.touch();
    if (peer.push(chunk)) callback();
    else this.heldWrite = callback;
  }

  private touch(): void {
    if (this.idleMs > 0) this.lastActive = Date.now();
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const left = this.lastActive + this.idleMs - Date.now();
      if (left > 0) return this.armIdle(left);
      this.idleTimer = undefined;
      this.emit('timeout');
    }, ms);
    this.idleTimer.unref();
  }
}

/**
 * Two connected ends: what one writes, the other reads, in order. `a` sees `b`'s address as its
 * remote one and the other way round.
 */
export function streamPair(a: PairAddress, b: PairAddress): [PairedSocket, PairedSocket] {
  const first = new PairedSocket(a, b);
  const second = new PairedSocket(b, a);
  first.pairWith(second);
  second.pairWith(first);
  return [first, second];
}
