/**
 * The edge as a whole: every listener of the rule set, the current rule set (swapped on reload while
 * sessions in flight keep theirs), and an orderly shutdown. `serve` runs it; tests run it in-process.
 */
import type { ListenerConfig, Rules } from '../config/schema.js';
import { DirectoryModel } from '../directory/directory-model.js';
import { dnsblZones, openDnsbl, type DnsblRuntime } from '../dns/dnsbl-runtime.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { startMetricsServer, type MetricsServer } from '../observability/http.js';
import { Metrics } from '../observability/metrics.js';
import { ProtocolLog } from '../observability/protocol-log.js';
import { openRecordLog } from './record-log-service.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import { BadmailWriter, badmailDir } from '../badmail/badmail-writer.js';
import type { Generation } from './edge-session.js';
import { EdgeListener } from './listener.js';
import { parseSmtpUrl } from '../net/endpoint.js';

/** Where rule sets come from: `load` reads and validates the current one, throwing on a bad set. */
export interface RulesSource {
  load(): Promise<Rules>;
}

export interface EdgeOptions {
  logger?: Logger;
  metrics?: Metrics;
  clock?: Clock;
}

/** A running edge. */
export interface Edge {
  /** Bound address of each listener, by name. */
  addresses: Record<string, { host: string; port: number }>;
  /** The `/metrics` address, when `metrics.listen` is configured. */
  metricsAddress?: string;
  metrics: Metrics;
  /**
   * Loads and validates the rule set again and resolves with it once it is in force; a bad one, or
   * one that changes a listener's start-up settings, is refused (logged, rethrown) and the old one stays.
   */
  reload(): Promise<Rules>;
  /**
   * Stops accepting, lets sessions finish for up to `graceMs`, then answers the rest
   * `421 4.3.2 Service shutting down` and closes them. Logs the drain as it starts.
   */
  close(graceMs?: number): Promise<Drain>;
}

/** How a shutdown went, for the line `serve` logs as it exits. */
export interface Drain {
  /** Sessions open when the edge stopped accepting. */
  sessions: number;
  /** Sessions still open when the grace period ended, answered `421 4.3.2`. */
  cut: number;
  /** From stopping to accept until every socket was closed. */
  ms: number;
}

interface Running {
  generation: Generation;
  dnsbl: DnsblRuntime;
  /** The `dns` settings `dnsbl` was opened with. */
  dns: Rules['dns'];
}

/**
 * One generation of the edge. A reload whose `dns` settings are unchanged keeps the DNSBL cache and
 * zone health of `previous` (answers within their TTL stay good), checking only zones it adds.
 */
async function build(rules: Rules, clock: Clock, metrics: Metrics, logger: Logger, previous?: Running): Promise<Running> {
  if (!rules.backend) throw new Error("the rule set has no 'backend' (backend.url: smtp://host:port)");
  const { host, port } = parseSmtpUrl(rules.backend.url, 'backend.url');
  let dnsbl: DnsblRuntime;
  if (previous && JSON.stringify(previous.dns) === JSON.stringify(rules.dns)) {
    dnsbl = previous.dnsbl;
    await dnsbl.health.setZones(dnsblZones(rules));
  } else {
    dnsbl = await openDnsbl(rules, {
      clock,
      periodic: true,
      onLookup: (zone, outcome, seconds, cached) => metrics.dnsblLookup(zone, outcome, seconds, cached),
      onZoneChange: (zone, state, reason) => {
        metrics.zoneHealth(zone, state);
        if (state === 'healthy') logger.info({ zone, state, reason }, 'DNSBL zone health');
        else logger.warn({ zone, state, reason }, 'DNSBL zone health');
      },
    });
  }
  const engine = new PolicyEngine(rules, { dnsbl: dnsbl.lookup, health: dnsbl.health, directory: DirectoryModel.fromRules(rules) });
  return {
    dnsbl,
    dns: rules.dns,
    generation: {
      engine,
      backend: {
        host,
        port,
        timeoutMs: rules.backend.timeoutMs,
        ...(rules.backend.connectTimeoutMs !== undefined ? { connectTimeoutMs: rules.backend.connectTimeoutMs } : {}),
        starttls: rules.backend.starttls,
        tlsRejectUnauthorized: rules.backend.tlsRejectUnauthorized,
        heloName: rules.hostname,
      },
      badmail: new BadmailWriter(badmailDir(rules)),
    },
  };
}

/** The listener settings a socket is opened with: a reload cannot change them. */
const STARTUP_KEYS = ['listen', 'limits', 'tls', 'proxyProtocol', 'reverseDns'] as const;

/**
 * Why `next` cannot apply to the running listeners, if it cannot. Each running listener is found in
 * `next` by its name, which every session uses to find its policy; a listener renamed, added,
 * removed, or with other start-up settings would leave a socket without rules (every connection
 * `421`) or with rules it does not follow, so such a reload is refused, naming the key.
 */
function listenerMismatch(running: readonly ListenerConfig[], next: Rules): string | undefined {
  const byName = new Map(running.map((l) => [l.name, l]));
  const names = running.map((l) => `'${l.name}'`).join(', ');
  for (const [i, l] of next.listeners.entries()) {
    const old = byName.get(l.name);
    if (!old) return `listeners[${i}].name: '${l.name}' is not a running listener (running: ${names}); a reload cannot add or rename listeners, restart to change them`;
    for (const key of STARTUP_KEYS) {
      if (JSON.stringify(old[key]) !== JSON.stringify(l[key])) {
        return `listeners[${i}].${key}: changed for listener '${l.name}'; a listener's ${STARTUP_KEYS.join(', ')} are read at start-up only, restart to change them`;
      }
    }
    byName.delete(l.name);
  }
  const [gone] = byName.keys();
  if (gone !== undefined) return `listeners: the running listener '${gone}' is missing; a reload cannot remove listeners, restart to change them`;
  return undefined;
}

/** Loads the rules, opens every listener (port 0 allowed) and the metrics endpoint. */
export async function startEdge(source: RulesSource, options: EdgeOptions = {}): Promise<Edge> {
  const rules = await source.load();
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ level: rules.log.level });
  const metrics = options.metrics ?? new Metrics({ processMetrics: true });
  let current = await build(rules, clock, metrics, logger);
  const protocolLog = rules.log.protocolLog ? await ProtocolLog.open(rules.log.protocolLog) : undefined;
  const records = rules.records ? await openRecordLog(rules.records, metrics, logger, clock) : undefined;
  const services = { logger, metrics, generation: () => current.generation, ...(protocolLog ? { protocolLog } : {}), ...(records ? { records } : {}) };
  const listeners: EdgeListener[] = [];
  let metricsServer: MetricsServer | undefined;
  try {
    for (const config of rules.listeners) listeners.push(await EdgeListener.start(config, rules.hostname, services));
    if (rules.metrics) metricsServer = await startMetricsServer(rules.metrics.listen, metrics, () => ({ status: 'ok' }));
  } catch (err) {
    for (const l of listeners) l.stopAccepting();
    current.dnsbl.close();
    throw err;
  }
  const addresses = Object.fromEntries(listeners.map((l) => [l.config.name, l.address]));
  for (const l of listeners) logger.info({ listener: l.config.name, ...l.address }, 'listening');

  return {
    addresses,
    metrics,
    ...(metricsServer ? { metricsAddress: metricsServer.address } : {}),
    async reload() {
      let next: Running;
      let loaded: Rules;
      try {
        loaded = await source.load();
        const mismatch = listenerMismatch(rules.listeners, loaded);
        if (mismatch !== undefined) throw new Error(mismatch);
        next = await build(loaded, clock, metrics, logger, current);
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'reload refused: the rule set cannot be applied; the old one stays');
        throw err;
      }
      // Sessions in flight hold the old generation; a replaced DNSBL cache still answers them, only
      // its periodic health checks stop.
      if (next.dnsbl !== current.dnsbl) current.dnsbl.close();
      current = next;
      logger.info('rule set reloaded');
      return loaded;
    },
    async close(graceMs = rules.shutdownGraceMs) {
      const started = Date.now();
      const open = (): number => listeners.reduce((n, l) => n + l.connectionCount, 0);
      for (const l of listeners) l.stopAccepting();
      const sessions = open();
      // The line an operator reads in `docker logs` or the journal while a stop seems to hang.
      logger.info({ event: 'drain', sessions, graceMs }, `stopped accepting; waiting up to ${graceMs} ms for ${sessions} session(s) in flight`);
      const deadline = started + graceMs;
      while (Date.now() < deadline && open() > 0) {
        await new Promise((r) => setTimeout(r, 25));
      }
      const cut = open();
      for (const l of listeners) l.shutDownSessions();
      const hard = Date.now() + 2000;
      while (Date.now() < hard && listeners.some((l) => l.connectionCount > 0)) {
        await new Promise((r) => setTimeout(r, 25));
      }
      for (const l of listeners) l.destroyAll();
      current.dnsbl.close();
      await metricsServer?.close();
      await protocolLog?.close();
      await records?.flush();
      return { sessions, cut, ms: Date.now() - started };
    },
  };
}
