/**
 * The bytes of recently received messages, kept after they were written to disk (their slot) so the split
 * and the local delivery that follow within moments need not open and read the file again (at a
 * few KB a message, those reads were a good part of a delivery's cost). Bounded in bytes, oldest out;
 * a message not held here is read from its file as before. Content files never change once written,
 * so a held copy is always the file's bytes.
 */
export class ContentCache {
  private readonly held = new Map<string, Buffer>();
  private bytes = 0;

  constructor(
    private readonly maxBytes: number,
    /** A larger message is not held: it would push out many small ones for one delivery. */
    readonly maxItemBytes: number,
  ) {}

  set(id: string, content: Buffer): void {
    if (content.length > this.maxItemBytes) return;
    this.delete(id);
    this.held.set(id, content);
    this.bytes += content.length;
    for (const [oldest, b] of this.held) {
      if (this.bytes <= this.maxBytes) break;
      this.held.delete(oldest);
      this.bytes -= b.length;
    }
  }

  get(id: string): Buffer | undefined {
    return this.held.get(id);
  }

  delete(id: string): void {
    const b = this.held.get(id);
    if (b === undefined) return;
    this.held.delete(id);
    this.bytes -= b.length;
  }
}
