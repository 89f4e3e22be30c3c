import type { DnsblMatch } from '../config/schema.js';

/** Result of asking one DNSBL zone about one address. */
export interface DnsblAnswer {
  /** listed: at least one A record in 127.0.0.0/8 that is not an operator error code. */
  status: 'listed' | 'not-listed' | 'error' | 'timeout';
  queryName: string;
  /** Listing codes (dotted quads in 127/8, error codes excluded), in answer order. */
  codes: string[];
  /** A records that were errors, never listings (outside 127/8, 127.255.255.x, 127.0.1.255, 127.0.0.255). */
  errorCodes: string[];
  /** The provider's TXT record for the address, when it has one. */
  txt?: string;
  /** Human-readable reason for `error` / `timeout`. */
  detail?: string;
  /** Whether this answer came from the cache. */
  cached: boolean;
  /** Seconds this answer stays good (what is left of it, for a cached one); 0 when it is not cached at all. */
  ttlSec?: number;
}

/** What a lookup gives: a cached answer as itself, one still asked of the DNS as a promise. */
export type DnsblAnswerOrPromise = DnsblAnswer | Promise<DnsblAnswer>;

/** A DNSBL answer's A records split into listing codes and error codes that are never listings. */
export interface ClassifiedCodes {
  codes: string[];
  errorCodes: string[];
}

/** Parse a dotted quad by hand: this runs on every cached verdict, so no split or regex. */
function toUint32(quad: string): number | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < quad.length; i++) {
    const c = quad.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (digits === 0 || dots !== 3) return undefined;
  return value * 256 + octet;
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

/** Describe a match mode the way the docs write it. */
export function describeMatch(match: DnsblMatch): string {
  if (match === 'any') return 'any';
  if ('mask' in match) return `mask ${match.mask}`;
  if ('maskAny' in match) return `maskAny ${match.maskAny}`;
  return `codes ${match.codes.join(', ')}`;
}
