/**
 * The edge's Authentication-Results field (RFC 8601), and the removal of any such field already in a
 * message that claims the edge's authserv-id (RFC 8601 5): a sender must not be able to forge ours.
 */

/** `Authentication-Results: <id>;` then one method entry a line, folded, CRLF-terminated. */
export function authenticationResults(authservId: string, entries: readonly string[]): string {
  const body = entries.length > 0 ? entries.join(';\r\n\t') : 'none';
  return `Authentication-Results: ${authservId};\r\n\t${body}\r\n`;
}

/** One header field as it lies in the header section: its bytes (folded lines and line ends included). */
function fields(head: string): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < head.length) {
    let end = head.indexOf('\n', at);
    // A field runs on while the next line opens with white space (RFC 5322 2.2.3).
    while (end >= 0 && (head[end + 1] === ' ' || head[end + 1] === '\t')) end = head.indexOf('\n', end + 1);
    const next = end < 0 ? head.length : end + 1;
    out.push(head.slice(at, next));
    at = next;
  }
  return out;
}

/** Skips white space, line ends and (nested) comments, RFC 5322 CFWS. */
function skipCfws(s: string, at: number): number {
  let depth = 0;
  for (; at < s.length; at++) {
    const c = s[at];
    if (c === '\\' && depth > 0) at++;
    else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0 && c !== ' ' && c !== '\t' && c !== '\r' && c !== '\n') break;
  }
  return at;
}

/** The authserv-id of an Authentication-Results field's value: a token or a quoted string (RFC 8601 2.2). */
export function authservIdOf(value: string): string {
  const at = skipCfws(value, 0);
  if (value[at] === '"') {
    let id = '';
    for (let i = at + 1; i < value.length && value[i] !== '"'; i++) id += value[i] === '\\' ? (value[++i] ?? '') : value[i];
    return id;
  }
  return /^[^\s;()"]*/.exec(value.slice(at))?.[0] ?? '';
}

const AR_NAME = /^authentication-results[ \t]*:/i;

/**
 * The header section without the Authentication-Results fields that carry `authservId` (compared
 * without case, as host names are); every other byte as it was. `removed` counts the fields taken out.
 */
export function stripForgedResults(head: Buffer, authservId: string): { head: Buffer; removed: number } {
  const text = head.toString('latin1');
  if (!/authentication-results/i.test(text)) return { head, removed: 0 };
  const ours = authservId.toLowerCase();
  let removed = 0;
  const kept = fields(text).filter((f) => {
    const name = AR_NAME.exec(f);
    if (!name) return true;
    const forged = authservIdOf(f.slice(name[0].length)).toLowerCase() === ours;
    if (forged) removed += 1;
    return !forged;
  });
  return removed === 0 ? { head, removed } : { head: Buffer.from(kept.join(''), 'latin1'), removed };
}
