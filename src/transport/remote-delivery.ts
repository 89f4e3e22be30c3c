/**
 * Remote delivery: one attempt of a queued message to its destination's hosts in MX order.
 * Longer than 350 lines because one class follows an attempt end to end (targets, connection,
 * per-recipient results, DSN batching) through nodemailer's connection, whose errors it interprets.
 */
import { createReadStream } from 'node:fs';
import { isIP } from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { DnsClient, DnsResponse } from '../dns/client.js';
import { parseEndpoint } from '../net/endpoint.js';
import { reply, SmtpError } from '../net/smtp-reply.js';
import type { Clock } from '../runtime/clock.js';
import { ConnectionCache } from './connection-cache.js';
import { CachingDns } from '../dns/caching-dns.js';
import type { Route } from './router.js';
import { KeyedSemaphore, Semaphore } from './semaphore.js';
import type { Envelope, EnvelopeRecipient, RecipientResult } from './types.js';

/** How remote delivery connects out. */
export interface RemoteDeliveryOptions {
  /** Our name in EHLO. */
  hostname: string;
  dns: DnsClient;
  /** Limit for connecting, the greeting and each reply. */
  timeoutMs: number;
  /** Connections open at once, in total. */
  maxConnections: number;
  /** Connections open at once to one destination (MX domain, or connector for a smart host). */
  maxPerDomain: number;
  /** Refuse to send in plain text: no STARTTLS (or a failed one) defers with 4.7.10. */
  requireTls?: boolean;
  /** SMTP port for MX delivery (`transport.remote.port`). */
  port: number;
  /** The clock DNS answers expire by (the real one by default). */
  clock?: Clock;
}

/** How long a session waits for the next message to its host (Postfix's smtp_connection_cache_time_limit). */
const SESSION_IDLE_MS = 2000;
/** Messages one session carries at most, so a long stream still reconnects now and then. */
const SESSION_MAX_USES = 100;

/** One host to try, in order. */
interface Target {
  /** The name for Remote-MTA and texts. */
  name: string;
  ip: string;
  port: number;
}

/** Why no host could be reached: its reply becomes every recipient's result (4xx deferred, 5xx failed). */
class NoTargets extends SmtpError {
  constructor(code: number, enhanced: string, text: string) {
    super(reply(code, enhanced, text), text);
    this.name = 'NoTargets';
  }

  get permanent(): boolean {
    return this.reply.code >= 500;
  }
}

/**
 * Delivers a queued message over SMTP (nodemailer's SMTPConnection) to a smart host or the
 * destination's MX hosts, in order, with STARTTLS whenever the server offers it. Results are per
 * recipient: 2xx delivered, 4xx deferred, 5xx failed; no host reachable: deferred 4.4.1; the
 * connection lost mid-transaction: deferred 4.4.2; a domain that does not exist: failed 5.4.0.
 */
export class RemoteDelivery {
  private readonly total: Semaphore;
  private readonly perDestination: KeyedSemaphore;
  private readonly dns: CachingDns;
  private readonly sessions: ConnectionCache;

  constructor(private readonly opts: RemoteDeliveryOptions) {
    // Destinations are many, each answer is small.
    this.dns = new CachingDns(opts.dns, { max: 10_000, ...(opts.clock ? { clock: opts.clock } : {}) });
    this.sessions = new ConnectionCache({ perHost: opts.maxPerDomain, idleMs: SESSION_IDLE_MS, maxUses: SESSION_MAX_USES });
    this.total = new Semaphore(opts.maxConnections);
    this.perDestination = new KeyedSemaphore(opts.maxPerDomain);
  }

  /** Ends the sessions kept open between messages. */
  close(): void {
    this.sessions.close();
  }

  /** Attempts delivery once; never throws, every recipient gets a result. */
  async deliver(route: Route, env: Envelope, recipients: EnvelopeRecipient[], contentPath: string): Promise<RecipientResult[]> {
    if (recipients.length === 0) return [];
    if (route.kind === 'none') return recipients.map((r) => ({ ...route.result, address: r.address }));
    const key = route.kind === 'mx' ? `mx:${route.domain}` : `connector:${route.connector}`;
    const releaseDestination = await this.perDestination.acquire(key);
    const releaseTotal = await this.total.acquire();
    try {
      let targets: Target[];
      try {
        targets = route.kind === 'mx' ? await this.mxTargets(route.domain) : await this.smartHostTargets(route.hosts);
      } catch (err) {
        if (err instanceof NoTargets) {
          const { code, enhanced } = err.reply;
          return recipients.map((r) => ({ address: r.address, outcome: err.permanent ? 'failed' : 'deferred', code, enhanced, text: err.message }));
        }
        throw err;
      }
      return await this.tryTargets(targets, env, recipients, contentPath);
    } finally {
      releaseTotal();
      releaseDestination();
    }
  }

  /** Each target in turn until one holds a session; the first session's results are final. */
  private async tryTargets(targets: Target[], env: Envelope, recipients: EnvelopeRecipient[], contentPath: string): Promise<RecipientResult[]> {
    const failures: string[] = [];
    let tlsRequiredButMissing = false;
    for (const target of targets) {
      const host = `${target.ip}:${target.port}`;
      const cached = await this.sessions.take(host);
      let conn: SMTPConnection;
      if (cached) {
        conn = cached.conn;
      } else {
        try {
          conn = await this.connect(target, false);
        } catch (err) {
          const e = err as NodeJS.ErrnoException & { response?: string };
          // An offered STARTTLS that fails is retried in plain text, unless TLS is required.
          if (e.code === 'ETLS' && !this.opts.requireTls) {
            try {
              conn = await this.connect(target, true);
            } catch (err2) {
              failures.push(`${target.name}[${target.ip}]:${target.port}: ${describe(err2)}`);
              continue;
            }
          } else {
            if (e.code === 'ETLS') tlsRequiredButMissing = true;
            failures.push(`${target.name}[${target.ip}]:${target.port}: ${describe(err)}`);
            continue;
          }
        }
      }
      let clean = false;
      try {
        const done = await this.transact(conn, target, env, recipients, contentPath);
        clean = done.clean;
        const nextHopDsn = offersDsn(conn);
        return done.results.map((r) => (r.outcome === 'delivered' ? { ...r, nextHopDsn } : r));
      } finally {
        // A session whose transactions all ended with a reply waits for the next message to this host.
        if (clean) this.sessions.give(host, { conn, uses: (cached?.uses ?? 0) + 1 });
        else {
          conn.quit();
          conn.close();
        }
      }
    }
    const result: Omit<RecipientResult, 'address'> = tlsRequiredButMissing
      ? { outcome: 'deferred', code: 451, enhanced: '4.7.10', text: `TLS is required but could not be negotiated: ${failures.join('; ')}` }
      : { outcome: 'deferred', code: 451, enhanced: '4.4.1', text: `No answer from any host: ${failures.join('; ')}` };
    return recipients.map((r) => ({ ...result, address: r.address }));
  }

  /** Opens a session (greeting, EHLO, STARTTLS when offered); rejects with nodemailer's error. */
  private connect(target: Target, plainOnly: boolean): Promise<SMTPConnection> {
    const conn = new SMTPConnection({
      host: target.ip,
      port: target.port,
      name: this.opts.hostname,
      ...(isIP(target.name) === 0 ? { servername: target.name } : {}),
      connectionTimeout: this.opts.timeoutMs,
      greetingTimeout: this.opts.timeoutMs,
      socketTimeout: this.opts.timeoutMs,
      socketCloseTimeout: 0,
      requireTLS: this.opts.requireTls === true,
      ignoreTLS: plainOnly,
      opportunisticTLS: !this.opts.requireTls,
      // Opportunistic TLS between MTAs does not verify certificates (RFC 7435): encryption beats none.
      tls: { rejectUnauthorized: false },
      logger: false,
    });
    return new Promise<SMTPConnection>((resolve, reject) => {
      // `on`, not `once`: a failing handshake can emit more than one error before the socket is gone.
      const onError = (err: Error): void => {
        conn.close();
        reject(err);
      };
      conn.on('error', onError);
      conn.connect((err?: Error) => {
        // A host that closes before its greeting comes here with an error, not as 'error': no session.
        if (err) {
          onError(err);
          return;
        }
        conn.off('error', onError);
        // Errors after the handshake reach the send/reset callbacks; this keeps them from being unhandled.
        conn.on('error', () => undefined);
        resolve(conn);
      });
    });
  }

  /**
   * Runs one transaction per set of recipients sharing NOTIFY/ORCPT (nodemailer sends one set of DSN
   * parameters per message), on the same connection. A lost connection defers what is left with 4.4.2.
   */
  private async transact(
    conn: SMTPConnection, target: Target, env: Envelope, recipients: EnvelopeRecipient[], contentPath: string,
  ): Promise<{ results: RecipientResult[]; clean: boolean }> {
    const results: RecipientResult[] = [];
    const batches = batchByDsn(recipients);
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]!;
      if (i > 0) {
        const reset = await new Promise<Error | null>((resolve) => conn.reset((err) => resolve(err ?? null)));
        if (reset) {
          for (const rest of batches.slice(i)) results.push(...rest.map((r) => dropped(r.address, target, reset)));
          return { results, clean: false };
        }
      }
      const outcome = await this.sendBatch(conn, target, env, batch, contentPath);
      results.push(...outcome.results);
      if (outcome.lost) {
        for (const rest of batches.slice(i + 1)) results.push(...rest.map((r) => dropped(r.address, target, outcome.lost!)));
        return { results, clean: false };
      }
    }
    return { results, clean: true };
  }

  /** One MAIL/RCPT/DATA transaction: the per-recipient results, and the error if the connection was lost. */
  private sendBatch(
    conn: SMTPConnection, target: Target, env: Envelope, batch: EnvelopeRecipient[], contentPath: string,
  ): Promise<{ results: RecipientResult[]; lost?: { message: string } }> {
    const first = batch[0]!;
    const dsn = {
      ...(env.ret !== undefined ? { ret: env.ret } : {}),
      ...(env.envid !== undefined ? { envid: env.envid } : {}),
      ...(first.notify !== undefined ? { notify: first.notify } : {}),
      ...(first.orcpt !== undefined ? { orcpt: first.orcpt } : {}),
    };
    const envelope = {
      from: env.mailFrom === '' ? false as const : env.mailFrom,
      to: batch.map((r) => r.address),
      size: env.size,
      // Declared only when the server offers 8BITMIME; harmless for 7-bit content, needed for 8-bit.
      use8BitMime: true,
      ...(Object.keys(dsn).length > 0 ? { dsn } : {}),
    };
    return new Promise((resolve) => {
      conn.send(envelope, createReadStream(contentPath), (err, info) => {
        const state = (conn as unknown as { _envelope?: { rejectedErrors?: NodemailerLikeError[] } })._envelope;
        if (!err && info) {
          // Keyed by the address exactly as sent: two recipients may differ only in the case of the local part.
          const rejected = new Map((info.rejectedErrors ?? []).map((e) => [e.recipient ?? '', e]));
          resolve({ results: batch.map((r) => {
            const e = rejected.get(r.address);
            return e ? fromReply(r.address, e.response, e.responseCode, target) : fromReply(r.address, info.response, undefined, target);
          }) });
          return;
        }
        const e = err as NodemailerLikeError;
        if (e.code === 'ESTREAM') {
          const local = { outcome: 'deferred' as const, code: 451, enhanced: '4.3.0', text: `Queued message unreadable: ${e.message}` };
          resolve({ results: batch.map((r) => ({ ...local, address: r.address })), lost: e });
          return;
        }
        // No reply code, or the connection itself failed (a 421 included): the transaction was cut off.
        if (e.responseCode === undefined || e.command === 'CONN') {
          resolve({ results: batch.map((r) => dropped(r.address, target, e)), lost: e });
          return;
        }
        // nodemailer reports refusals at RCPT on the connection's envelope only, so read them there
        // when the message itself was refused afterwards.
        const perRecipient = new Map(
          (e.rejectedErrors ?? state?.rejectedErrors ?? []).map((x) => [x.recipient ?? '', x]),
        );
        resolve({ results: batch.map((r) => {
          const x = perRecipient.get(r.address);
          return x ? fromReply(r.address, x.response, x.responseCode, target) : fromReply(r.address, e.response, e.responseCode, target);
        }) });
      });
    });
  }

  /** Smart hosts as given: IP literals as they are, names through DNS (A). */
  private async smartHostTargets(hosts: string[]): Promise<Target[]> {
    const targets: Target[] = [];
    let temporary = '';
    let permanent = '';
    for (const spec of hosts) {
      try {
        const { host, port } = parseEndpoint(spec, 'smartHost');
        for (const ip of await this.addressesOf(host)) targets.push({ name: host, ip, port });
      } catch (err) {
        if (err instanceof NoTargets && err.permanent) permanent = err.message;
        else temporary = (err as Error).message;
      }
    }
    if (targets.length > 0) return targets;
    if (temporary) throw new NoTargets(451, '4.4.3', `Smart host lookup failed: ${temporary}`);
    throw new NoTargets(550, '5.4.0', `Smart host does not resolve: ${permanent}`);
  }

  /** MX hosts by preference (equal ones shuffled), then their addresses; no MX: the domain's own A record. */
  private async mxTargets(domain: string): Promise<Target[]> {
    const { port } = this.opts;
    const answer = await this.query(domain, 'MX');
    if (answer.rcode === 'NXDOMAIN') {
      throw new NoTargets(550, '5.4.0', `Domain ${domain} does not exist (NXDOMAIN)`);
    }
    const mx = answer.answers.flatMap((a) => (a.type === 'MX' ? [a.data] : []));
    if (mx.length === 1 && (mx[0]!.exchange === '' || mx[0]!.exchange === '.')) {
      throw new NoTargets(556, '5.1.10', `Domain ${domain} accepts no mail (null MX)`);
    }
    const hosts = mx.length === 0
      ? [domain]
      : mx.map((m) => ({ m, r: Math.random() })).sort((a, b) => a.m.preference - b.m.preference || a.r - b.r).map((x) => x.m.exchange.replace(/\.$/, ''));
    const targets: Target[] = [];
    let temporary = '';
    for (const host of hosts) {
      try {
        for (const ip of await this.addressesOf(host)) targets.push({ name: host, ip, port });
      } catch (err) {
        if (!(err instanceof NoTargets && err.permanent)) temporary = (err as Error).message;
      }
    }
    if (targets.length > 0) return targets;
    if (temporary) throw new NoTargets(451, '4.4.3', `Lookup of mail hosts for ${domain} failed: ${temporary}`);
    throw new NoTargets(550, '5.4.0', `No mail host for ${domain} resolves (${hosts.join(', ')})`);
  }

  /** Addresses of a host, A before AAAA; throws NoTargets (failed) when it has none, (deferred) when DNS fails. */
  private async addressesOf(host: string): Promise<string[]> {
    const literal = host.replace(/^\[|\]$/g, '');
    if (isIP(literal) !== 0) return [literal];
    if (host.toLowerCase() === 'localhost') return ['127.0.0.1'];
    const answers = await Promise.allSettled([this.query(host, 'A'), this.query(host, 'AAAA')]);
    const ips = answers.flatMap((a) => (a.status === 'fulfilled' ? a.value.answers.flatMap((r) => (r.type === 'A' || r.type === 'AAAA' ? [r.data] : [])) : []));
    if (ips.length > 0) return ips;
    const failed = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    if (failed) throw failed.reason;
    throw new NoTargets(550, '5.4.0', `${host} has no address`);
  }

  /** A DNS query whose failures (time-out, SERVFAIL) come back as temporary errors. */
  private async query(name: string, type: 'MX' | 'A' | 'AAAA'): Promise<DnsResponse> {
    let answer: DnsResponse;
    try {
      answer = await this.dns.query(name, type);
    } catch (err) {
      throw new NoTargets(451, '4.4.3', `DNS ${type} lookup of ${name} failed: ${(err as Error).message}`);
    }
    if (answer.rcode !== 'NOERROR' && answer.rcode !== 'NXDOMAIN') {
      throw new NoTargets(451, '4.4.3', `DNS ${type} lookup of ${name} failed: ${answer.rcode}`);
    }
    return answer;
  }
}

/** The fields of nodemailer's errors this module reads. */
interface NodemailerLikeError {
  code?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  recipient?: string;
  message: string;
  rejectedErrors?: NodemailerLikeError[];
}

/** Recipients grouped so each group shares NOTIFY and ORCPT, in first-seen order. */
function batchByDsn(recipients: EnvelopeRecipient[]): EnvelopeRecipient[][] {
  const groups = new Map<string, EnvelopeRecipient[]>();
  for (const r of recipients) {
    const key = `${(r.notify ?? []).join(',')}|${r.orcpt ?? ''}`;
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values()];
}

/** A recipient's result from a server reply. */
function fromReply(address: string, reply: string | undefined, code: number | undefined, target: Target): RecipientResult {
  const text = (reply ?? '').replace(/\r?\n/g, ' ').trim();
  const c = code ?? Number(/^(\d{3})/.exec(text)?.[1] ?? 451);
  const m = /^\d{3}[ -]?([245]\.\d{1,3}\.\d{1,3})\s*/.exec(text);
  const cls = Math.floor(c / 100);
  const enhanced = m?.[1] ?? `${cls === 2 || cls === 5 ? cls : 4}.0.0`;
  const rest = text.replace(/^\d{3}[ -]?/, '').replace(/^[245]\.\d{1,3}\.\d{1,3}\s*/, '');
  const outcome = cls === 2 ? 'delivered' : cls === 5 ? 'failed' : 'deferred';
  return { address, outcome, code: c, enhanced, text: rest || text, remoteMta: target.name };
}

/** Whether the server offered DSN in its EHLO reply (nodemailer keeps the extensions it found there). */
function offersDsn(conn: SMTPConnection): boolean {
  return (conn as unknown as { _supportedExtensions?: string[] })._supportedExtensions?.includes('DSN') === true;
}

/** The result for a recipient whose transaction was cut off. */
function dropped(address: string, target: Target, err: { message: string }): RecipientResult {
  return { address, outcome: 'deferred', code: 451, enhanced: '4.4.2', text: `Connection to ${target.name} lost during the transaction: ${err.message}`, remoteMta: target.name };
}

/** A short reason from a connection error. */
function describe(err: unknown): string {
  const e = err as NodemailerLikeError;
  return (e.response ?? e.message).replace(/\r?\n/g, ' ');
}
