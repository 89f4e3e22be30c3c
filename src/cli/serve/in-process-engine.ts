import type { InProcessBackend } from '../../edge/edge.js';
import { streamPair } from '../../net/stream-pair.js';
import type { TransportEngine } from '../../transport/engine.js';

/** The edge's side of each pair: the engine takes it for a TCP client from 127.0.0.1, as it was before. */
const EDGE_SIDE = { address: '127.0.0.1', port: 0 };

/**
 * The bundled engine as a back end in this process: each session the edge opens to the engine's
 * listen address is an in-memory stream pair carrying the same SMTP, the engine taking one end as a
 * client of its listener. No system call, socket buffer or wake-up of the kernel's lies between them.
 */
export function inProcessEngine(engine: Pick<TransportEngine, 'address' | 'accept'>): InProcessBackend {
  const listener = { address: engine.address.host, port: engine.address.port };
  return {
    host: engine.address.host,
    port: engine.address.port,
    connect() {
      const [edgeEnd, engineEnd] = streamPair(EDGE_SIDE, listener);
      engine.accept(engineEnd);
      return edgeEnd;
    },
  };
}
