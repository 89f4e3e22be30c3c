/** How much of a message's start is kept to find its Message-ID. */
const HEADER_TAP_BYTES = 65536;

/** Sees the content on its way to the queue file, keeping its first 64 KiB: the file is not read back for the Message-ID. */
export class HeaderTap {
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;

  /** Notes `chunk` (the next bytes of the content) and hands it back unchanged. */
  keep(chunk: Buffer): Buffer {
    if (this.keptBytes < HEADER_TAP_BYTES) {
      const part = chunk.subarray(0, HEADER_TAP_BYTES - this.keptBytes);
      this.kept.push(part);
      this.keptBytes += part.length;
    }
    return chunk;
  }

  /** The Message-ID header, when the kept start holds one in its header block. */
  messageId(): string | undefined {
    const text = Buffer.concat(this.kept).toString('latin1');
    const end = text.search(/\r?\n\r?\n/);
    const header = end < 0 ? text : text.slice(0, end);
    return /^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(header)?.[1]?.replace(/\s+/g, '') || undefined;
  }
}
