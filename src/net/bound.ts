import { once, type EventEmitter } from 'node:events';
import type net from 'node:net';

/**
 * Wait for a server that was told to listen: the address it bound, or the bind error (port taken,
 * address not ours). smtp-server reports errors on itself and `listening` on its inner net.Server.
 */
export async function boundAddress(server: net.Server, errors: EventEmitter = server): Promise<net.AddressInfo> {
  await Promise.race([
    once(server, 'listening'),
    once(errors, 'error').then(([err]: unknown[]) => {
      throw err;
    }),
  ]);
  return server.address() as net.AddressInfo;
}
