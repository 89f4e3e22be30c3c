/**
 * Remote SMTP sessions kept open between messages to the same host, as Postfix's connection cache
 * does: a session that ended its transaction cleanly waits, idle, for the next message to that host
 * (at most `perHost` waiting, each for at most `idleMs`, each used for at most `maxUses` messages);
 * one taken up again must first answer RSET, else it is closed and the caller connects afresh.
 */
import type SMTPConnection from 'nodemailer/lib/smtp-connection';

interface Idle {
  conn: SMTPConnection;
  uses: number;
  timer: NodeJS.Timeout;
}

/** What a session taken from the cache carries: how many messages it has sent so far. */
export interface CachedSession {
  conn: SMTPConnection;
  uses: number;
}

export class ConnectionCache {
  private readonly idle = new Map<string, Idle[]>();

  constructor(private readonly limits: { perHost: number; idleMs: number; maxUses: number }) {}

  /** An idle session to `host` that answered RSET, or undefined (the caller connects). */
  async take(host: string): Promise<CachedSession | undefined> {
    for (let entry = this.pop(host); entry; entry = this.pop(host)) {
      const conn = entry.conn;
      const alive = await new Promise<boolean>((resolve) => conn.reset((err) => resolve(!err)));
      if (alive) return { conn, uses: entry.uses };
      conn.close();
    }
    return undefined;
  }

  /** Keeps a session that ended its transaction cleanly, or ends it when the cache for its host is full or it is used up. */
  give(host: string, session: CachedSession): void {
    const list = this.idle.get(host) ?? [];
    if (session.uses >= this.limits.maxUses || list.length >= this.limits.perHost) return end(session.conn);
    const entry: Idle = { conn: session.conn, uses: session.uses, timer: setTimeout(() => this.expire(host, entry), this.limits.idleMs) };
    entry.timer.unref();
    list.push(entry);
    this.idle.set(host, list);
  }

  /** Ends every idle session (the engine is stopping). */
  close(): void {
    for (const list of this.idle.values()) for (const e of list) {
      clearTimeout(e.timer);
      end(e.conn);
    }
    this.idle.clear();
  }

  private pop(host: string): Idle | undefined {
    const list = this.idle.get(host);
    const entry = list?.pop();
    if (list?.length === 0) this.idle.delete(host);
    if (entry) clearTimeout(entry.timer);
    return entry;
  }

  private expire(host: string, entry: Idle): void {
    const list = this.idle.get(host);
    const i = list?.indexOf(entry) ?? -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.idle.delete(host);
    end(entry.conn);
  }
}

/** QUIT, then close. */
function end(conn: SMTPConnection): void {
  conn.quit();
  conn.close();
}
