/**
 * The session ID in every refusal the edge writes (`550 5.7.1 <text> [ID]`), so that a sender who
 * quotes the reply gives the operator the key to the logs and the decision records. Replies passed
 * on from the back end are the back end's words and stay exactly as it wrote them.
 */
import type { SmtpReply } from '../net/smtp-reply.js';

const passedOn = new WeakSet<SmtpReply>();

/** Marks a reply read from the back end: it reaches the client unchanged. Only 4xx/5xx need the mark (a WeakSet entry costs every reply a few µs). */
export function passedOnReply(r: SmtpReply): SmtpReply {
  if (r.code >= 400) passedOn.add(r);
  return r;
}

/** `r` with ` [id]` after its last line when it is one of the edge's own 4xx/5xx replies. */
export function withSessionId(r: SmtpReply, id: string): SmtpReply {
  if (r.code < 400 || passedOn.has(r) || id === '') return r;
  const lines = r.lines.length > 0 ? [...r.lines] : [''];
  const last = lines.length - 1;
  lines[last] = `${lines[last] ?? ''} [${id}]`.trimStart();
  return { ...r, lines };
}
