/**
 * Keeps the memory of a large message from piling up as garbage.
 *
 * Relaying holds no more than a few chunks at a time (back-pressure both ways), but every chunk read
 * off a socket, and smtp-server's copy of it, is a fresh young-generation ArrayBuffer. The JS objects
 * per chunk are tiny, so the young generation hardly fills, and V8 only forces a scavenge once about
 * 32 MiB (twice its default semi-space) of young ArrayBuffer memory has accumulated: measured, a
 * 50 MB message grew the edge by ~33 MiB, all of it dead buffers. A scavenge every few MiB of message
 * data frees them while they are few; it costs well under a millisecond per run when the heap is
 * quiet, and small messages, arriving at a few MiB per second, trigger one only now and then.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Message bytes between two scavenges: the edge's growth stays near twice this (socket read + parser copy). */
export const GC_PACE_BYTES = 2 * 1024 * 1024;

let since = 0;
let minorGc: (() => void) | undefined;

/**
 * V8's gc() without starting node with --expose-gc: a context created while the flag is on gets it,
 * and the flag is turned off again so no other code sees a global gc it did not ask for.
 */
function obtainMinorGc(): () => void {
  let gc = globalThis.gc;
  if (!gc) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as NodeJS.GCFunction;
    } catch (err) {
      // Pacing is an optimisation: without it V8 collects at its own pace and relaying goes on.
      process.emitWarning(`GC pacing unavailable, big messages will use more memory: ${(err as Error).message}`);
      return () => undefined;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  }
  const collect = gc;
  return () => collect({ type: 'minor' });
}

/** Counts message bytes taken off a client; runs a young-generation collection every GC_PACE_BYTES. */
export function noteMessageBytes(bytes: number): void {
  since += bytes;
  if (since < GC_PACE_BYTES) return;
  since = 0;
  minorGc ??= obtainMinorGc();
  minorGc();
}
