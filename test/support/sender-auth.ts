/** Keys, DNS records and signed messages for the sender-authentication tests: real RSA keys, mailauth's signer. */
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign, sealMessage } from 'mailauth';
import { CachedAuthResolver } from '../../src/auth/auth-resolver.js';
import { MailauthSenderAuth } from '../../src/auth/mailauth-sender-auth.js';
import { DnsClient } from '../../src/dns/client.js';
import type { TestDnsServer } from './dns-server.js';

export interface SigningKey {
  privateKey: string;
  /** The `v=DKIM1` TXT record that publishes the public key. */
  record: string;
}

/** A fresh 2048-bit RSA key and its DKIM key record (RFC 6376 3.6.1). */
export function signingKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), record: `v=DKIM1; k=rsa; p=${p}` };
}

/** `message` with a DKIM-Signature of `domain` (selector `sel`) on top. */
export async function signed(message: string, domain: string, key: SigningKey, selector = 'sel'): Promise<string> {
  const signature = { signingDomain: domain, selector, privateKey: key.privateKey };
  // mailauth signs with `signatureData` (its typings ask for the fields at the top level as well).
  // `signTime` fixed once: without it mailauth reads the clock twice (the t= it signs and the t= it
  // writes), and a signing that straddles a half second then carries a bad signature.
  const r = await dkimSign(message, { ...signature, signatureData: [signature], signTime: new Date() });
  if (r.errors.length) throw new Error(`signing failed: ${JSON.stringify(r.errors)}`);
  return r.signatures + message;
}

/** `message` with an ARC set (i=1, cv=none) of `domain` on top, as a forwarder would add it. */
export async function arcSealed(message: string, domain: string, key: SigningKey, authResults: string, selector = 'sel'): Promise<string> {
  const seal = await sealMessage(message, { signingDomain: domain, selector, privateKey: key.privateKey, authResults, cv: 'none', signTime: new Date() } as Parameters<typeof sealMessage>[1]);
  return seal.toString() + message;
}

/** A SenderAuth port on the test DNS server, with its resolver (to count queries). */
export function senderAuthOn(dns: TestDnsServer, authservId = 'mx.example.test', timeoutMs = 2000): { auth: MailauthSenderAuth; resolver: CachedAuthResolver } {
  const resolver = new CachedAuthResolver({ client: new DnsClient({ servers: [dns.address], timeoutMs: 1000 }), cacheSize: 1000 });
  return { auth: new MailauthSenderAuth({ resolver, authservId, timeoutMs }), resolver };
}
