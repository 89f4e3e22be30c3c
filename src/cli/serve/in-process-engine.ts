import type { InProcessBackend } from '../../edge/in-process-session.js';
import type { TransportEngine } from '../../transport/engine.js';

/**
 * The bundled engine as a back end in this process: the edge hands each transaction to the engine's
 * receive path directly (engine.open), with no SMTP text, socket or stream between them. The client
 * is passed on as XFORWARD would pass it: its address, and its HELO name in lower case.
 */
export function inProcessEngine(engine: Pick<TransportEngine, 'address' | 'open'>): InProcessBackend {
  return {
    host: engine.address.host,
    port: engine.address.port,
    begin(client) {
      const tx = engine.open({ ip: client.address, ...(client.helo ? { helo: client.helo.toLowerCase() } : {}) });
      return {
        mail: (sender, params) => tx.mail(sender, params),
        rcpt: (address) => tx.rcpt({ address }),
        data: (body) => tx.data(body),
        abandon: () => tx.abandon(),
      };
    },
  };
}
