/**
 * xtext (RFC 3461 4): how XFORWARD and XCLIENT carry values. Printable ASCII other than `+` and `=`
 * stands for itself; every other byte is `+` and two upper-case hex digits. It encodes bytes: a
 * string is taken as its UTF-8 bytes, so no character can come out as a different one at the far end.
 */
export function xtext(value: string): string {
  // Host names, HELO names and addresses nearly always need no encoding: returned as they are, unread as bytes.
  if (standsForItself(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Every character is printable ASCII other than `+` and `=` (so each is one UTF-8 byte, itself). */
function standsForItself(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2b || c === 0x3d) return false;
  }
  return true;
}
