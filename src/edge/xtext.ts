/**
 * xtext (RFC 3461 4): how XFORWARD and XCLIENT carry values. Printable ASCII other than `+` and `=`
 * stands for itself; every other byte is `+` and two upper-case hex digits. It encodes bytes: a
 * string is taken as its UTF-8 bytes, so no character can come out as a different one at the far end.
 */
export function xtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
