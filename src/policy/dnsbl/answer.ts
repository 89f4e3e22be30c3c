import type { DnsblMatch } from '../../config/schema.js';

/** A DNSBL answer's A records split into listing codes and error codes that are never listings. */
export interface ClassifiedCodes {
  codes: string[];
  errorCodes: string[];
}

function toUint32(quad: string): number | undefined {
  const parts = quad.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/**
 * Whether one A record is a listing code: inside 127.0.0.0/8 and not an operator error code
 * (127.255.255.0/24, 127.0.1.255, 127.0.0.255). Anything else signals a broken or hijacked zone.
 */
export function isListingCode(code: string): boolean {
  const v = toUint32(code);
  if (v === undefined) return false;
  if (v >>> 24 !== 127) return false;
  if (v >>> 8 === 0x7fffff) return false;
  return code !== '127.0.1.255' && code !== '127.0.0.255';
}

/** Split A records into listing codes and error codes, keeping answer order. */
export function classifyCodes(records: string[]): ClassifiedCodes {
  const codes: string[] = [];
  const errorCodes: string[] = [];
  for (const r of records) (isListingCode(r) ? codes : errorCodes).push(r);
  return { codes, errorCodes };
}

/**
 * The first listing code that satisfies a rule's match mode, or undefined. Each code is judged on
 * its own; masks compare against the whole 32-bit value, so 0.0.0.N only tests the last octet.
 */
export function matchesRule(codes: string[], match: DnsblMatch): string | undefined {
  for (const code of codes) {
    if (!isListingCode(code)) continue;
    if (codeMatches(code, match)) return code;
  }
  return undefined;
}

function codeMatches(code: string, match: DnsblMatch): boolean {
  if (match === 'any') return true;
  const value = toUint32(code);
  if (value === undefined) return false;
  if ('codes' in match) return match.codes.some((c) => toUint32(c) === value);
  const maskQuad = 'mask' in match ? match.mask : match.maskAny;
  const mask = toUint32(maskQuad);
  if (mask === undefined) return false;
  // `>>> 0` keeps the AND unsigned so a mask with the top bit set still compares correctly.
  const hit = (value & mask) >>> 0;
  return 'mask' in match ? hit === mask : hit !== 0;
}
