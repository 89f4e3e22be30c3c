/**
 * Mail addresses as the filters compare them: without angle brackets, case-insensitive — except a
 * quoted local part, which is compared exactly as written.
 */
export function normalizeAddress(s: string): string {
  const bare = s.trim().replace(/^<(.*)>$/, '$1').trim();
  const parts = splitAddress(bare);
  if (!parts) return bare.toLowerCase();
  const local = parts.local.startsWith('"') ? parts.local : parts.local.toLowerCase();
  return `${local}@${parts.domain.toLowerCase()}`;
}

/** Split at the `@` that separates the domain, understanding a quoted local part that contains `@`. */
export function splitAddress(address: string): { local: string; domain: string } | undefined {
  const close = address.startsWith('"') ? address.indexOf('"', 1) : 0;
  if (close < 0) return undefined;
  const at = close > 0 ? address.indexOf('@', close) : address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return { local: address.slice(0, at), domain: address.slice(at + 1).replace(/\.$/, '') };
}
