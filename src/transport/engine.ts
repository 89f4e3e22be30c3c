import path from 'node:path';
import type { Rules } from '../config/schema.js';
import { DnsClient } from '../dns/client.js';
import { parseEndpoint } from '../net/endpoint.js';
import { IpList } from '../net/ip-list.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { systemClock, type Clock, type Timers } from '../runtime/clock.js';
import { startAdminServer } from './admin.js';
import { DirectoryModel } from '../directory/directory-model.js';
import { QueueManager } from './queue-manager.js';
import { QueueStore } from './queue-store.js';
import { startReceiveServer } from './receive-server.js';
import type { ReceiveClient, ReceiveTransaction } from './receive-transaction.js';
import { RemoteDelivery } from './remote-delivery.js';
import { BadmailWriter, badmailDir } from '../badmail/badmail-writer.js';
import { Router } from './router.js';
import { TrackingLog } from './tracking-log.js';

/** Where the engine keeps its files, resolved against the working directory. */
export interface EnginePaths {
  queueDir: string;
  mailboxDir: string;
  badmailDir: string;
  trackingLog: string;
}

/** The engine's directories: each configured one, else under `transport.dataDir`. */
export function enginePaths(rules: Rules, baseDir: string = process.cwd()): EnginePaths {
  const t = rules.transport;
  const data = path.resolve(baseDir, t.dataDir);
  return {
    queueDir: path.resolve(data, t.queueDir ?? 'queue'),
    mailboxDir: path.resolve(data, t.mailboxDir ?? 'mailboxes'),
    badmailDir: badmailDir(rules, baseDir),
    trackingLog: path.resolve(data, t.trackingLog ?? 'tracking.log'),
  };
}

/** What may be injected into the engine (tests inject the clock and DNS). */
export interface TransportEngineOptions {
  clock?: Clock;
  /** The wait of a batch of `new/` syncs after local deliveries (tests hold it). */
  timers?: Timers;
  dnsClient?: DnsClient;
  /** Share a registry with the edge; by default the engine has its own (served on the admin /metrics). */
  metrics?: Metrics;
  logger?: Logger;
  /** Directory that relative paths are resolved against (default: the working directory). */
  baseDir?: string;
  /** How often the queue manager looks for due work (default 1000 ms). */
  pollMs?: number;
}

/** A running transport engine. */
export interface TransportEngine {
  /** The SMTP listener, as bound. */
  address: { host: string; port: number };
  /**
   * Begins a transaction handed over by a caller in this process (serve's edge) without SMTP text,
   * answered step by step as the SMTP listener answers (receive-server.ts); throws an SmtpError when
   * the engine cannot take one (closing, or 127.0.0.1 not in transport.allowFrom).
   */
  open(client: ReceiveClient): ReceiveTransaction;
  /** The admin interface (`portcullis queue` talks to it), as bound. */
  admin: { host: string; port: number };
  paths: EnginePaths;
  manager: QueueManager;
  store: QueueStore;
  tracking: TrackingLog;
  metrics: Metrics;
  /**
   * Categorizes by the directory (and accepted domains) of `rules` from now on: the composition root
   * hands it each rule set the edge has put in force, so edge and engine judge recipients alike.
   */
  useDirectoryOf(rules: Rules): void;
  /** Stops listening, lets the work in progress finish, syncs the Maildirs still waiting for a batched sync (and removes their records), writes out and closes the tracking log, and closes the slot files kept open. */
  close(): Promise<void>;
}

/**
 * Starts the bundled transport engine: rebuilds the queues from disk, then listens for SMTP on
 * `transport.listen` and for the admin interface on `transport.admin.listen`, and works the queues.
 */
export async function startTransportEngine(rules: Rules, opts: TransportEngineOptions = {}): Promise<TransportEngine> {
  const clock = opts.clock ?? systemClock;
  const t = rules.transport;
  const paths = enginePaths(rules, opts.baseDir);
  const logger = opts.logger ?? createLogger({ level: rules.log.level });
  const metrics = opts.metrics ?? new Metrics();
  const store = new QueueStore(paths.queueDir, t.fsync);
  const recovered = await store.open();
  const tracking = new TrackingLog(paths.trackingLog);
  const router = new Router(rules, clock);
  const dns = opts.dnsClient ?? new DnsClient({ servers: rules.dns.servers, timeoutMs: rules.dns.timeoutMs });
  const remote = new RemoteDelivery({
    hostname: rules.hostname,
    dns,
    timeoutMs: t.remote.timeoutMs,
    maxConnections: t.remote.maxConnections,
    maxPerDomain: t.remote.maxPerDomain,
    requireTls: t.remote.requireTls,
    port: t.remote.port,
    clock,
  });
  let directory = DirectoryModel.fromRules(rules);
  const onError = (err: Error, context: string): void => logger.error({ component: 'transport', context, err: err.message }, 'transport engine error');
  const manager = new QueueManager({
    rules,
    store,
    clock,
    ...(opts.timers ? { timers: opts.timers } : {}),
    directory: () => directory,
    router,
    remote,
    mailboxRoot: paths.mailboxDir,
    badmail: new BadmailWriter(paths.badmailDir, t.fsync),
    tracking,
    metrics,
    onError,
  });

  const listen = parseEndpoint(t.listen, 'transport.listen');
  const receive = await startReceiveServer({
    hostname: rules.hostname,
    host: listen.host,
    port: listen.port,
    allowFrom: IpList.parse(t.allowFrom),
    maxMessageSize: t.limits.maxMessageSize,
    maxRecipients: t.limits.maxRecipients,
    store,
    clock,
    deliverNow: (message, content) => manager.deliverNow(message, content),
    onQueued(message, reply, delivered) {
      metrics.transportReceive('queued');
      manager.track('received', message, message.envelope.recipients.map((r) => r.address), reply);
      if (delivered) delivered();
      else manager.kick();
    },
    onError(e) {
      if (e.kind !== 'connection') metrics.transportReceive(e.kind === 'refused' ? 'refused' : 'storage-error');
      logger.warn({ component: 'transport', kind: e.kind, client: e.ip, detail: e.detail }, 'transport receive problem');
    },
  });
  const adminListen = parseEndpoint(t.admin.listen, 'transport.admin.listen');
  let admin;
  try {
    admin = await startAdminServer(adminListen.host, adminListen.port, manager, metrics, onError);
  } catch (err) {
    await receive.close();
    throw err;
  }
  manager.start(opts.pollMs ?? 1000);
  logger.info({ component: 'transport', smtp: receive.address, admin: admin.address, recovered, queueDir: paths.queueDir }, 'transport engine started');

  return {
    address: receive.address,
    open: (client) => receive.open(client),
    admin: admin.address,
    paths,
    manager,
    store,
    tracking,
    metrics,
    useDirectoryOf(next) {
      directory = DirectoryModel.fromRules(next);
      logger.info({ component: 'transport' }, 'directory reloaded');
    },
    close: async () => {
      await receive.close();
      await manager.stop();
      remote.close();
      await admin.close();
      await store.close();
      await tracking.close();
    },
  };
}
