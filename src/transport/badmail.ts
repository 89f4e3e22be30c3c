import { copyFile, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { QueuedMessage } from './queue-store.js';

/**
 * Puts an undeliverable bounce into the Badmail directory: `<id>.eml` (the message as queued) and
 * `<id>.json` (its envelope and why it could not be delivered). Nothing is ever sent from there.
 */
export async function writeBadmail(dir: string, m: QueuedMessage, contentPath: string, reasons: string[], fsync: boolean): Promise<void> {
  await mkdir(dir, { recursive: true });
  const base = path.join(dir, m.envelope.id);
  await copyFile(contentPath, `${base}.eml`);
  const handle = await open(`${base}.json`, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify({ envelope: m.envelope, rootId: m.rootId, reasons }, null, 2)}\n`, 'utf8');
    if (fsync) await handle.sync();
  } finally {
    await handle.close();
  }
}
