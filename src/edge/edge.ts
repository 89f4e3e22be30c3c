/**
 * The edge as a whole: every listener of the rule set, the current rule set (swapped on reload while
 * sessions in flight keep theirs), and an orderly shutdown. `serve` runs it; tests run it in-process.
 */
import type { ListenerConfig, Rules } from '../config/schema.js';
import { loadShadowRules } from '../config/shadow-rules.js';
import { DirectoryModel } from '../directory/directory-model.js';
import { dnsblZones, openDnsbl, type DnsblRuntime } from '../dns/dnsbl-runtime.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { startMetricsServer, type MetricsServer } from '../observability/http.js';
import { Metrics } from '../observability/metrics.js';
import { ProtocolLog } from '../observability/protocol-log.js';
import { openRecordLog } from './record-log-service.js';
import { systemClock, type Clock } from '../runtime/clock.js';
import { openSenderAuth } from '../auth/open-sender-auth.js';
import { PolicyEngine } from '../policy/policy-engine.js';
import type { LimitPorts } from '../policy/limits.js';
import { processResourceProbe, type ResourceProbe } from '../runtime/resource-probe.js';
import { openStateStore } from '../state/open-state-store.js';
import type { StateStore } from '../state/state-store.js';
import { BadmailWriter, badmailDir } from '../badmail/badmail-writer.js';
import type { Generation } from './edge-session.js';
import { EdgeListener } from './listener.js';
import { parseSmtpUrl } from '../net/endpoint.js';
import { BackendPool } from './backend-pool.js';
import type { BackendTarget } from './backend-relay.js';
import type { InProcessBackend } from './in-process-session.js';

/** Where rule sets come from: `load` reads and validates the current one, throwing on a bad set. */
export interface RulesSource {
  load(): Promise<Rules>;
}

export interface EdgeOptions {
  logger?: Logger;
  metrics?: Metrics;
  clock?: Clock;
  /** The process's state store; default: the one `state` names (memory when absent), opened here. */
  state?: StateStore;
  /** The load back pressure judges; default: this process's event loop and memory. */
  probe?: ResourceProbe;
  /** A back end running in this process (serve's bundled engine): while the rule set relays to it, it takes the transactions without SMTP text. */
  inProcessBackend?: InProcessBackend;
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
   * The first half of a reload, for a group of processes that switch together: loads, validates and
   * builds the next generation without putting it in force. A refused one is logged and rethrown.
   */
  prepare(): Promise<PreparedReload>;
  /**
   * Stops accepting, lets sessions finish for up to `graceMs`, then answers the rest
   * `421 4.3.2 Service shutting down` and closes them. Logs the drain as it starts.
   */
  close(graceMs?: number): Promise<Drain>;
}

/** A validated generation waiting for the word: `commit` puts it in force, `abort` drops it. */
export interface PreparedReload {
  rules: Rules;
  commit(): Rules;
  abort(): void;
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
  /** Stops counting the pool in the metrics. */
  poolMetrics: { stop(): void };
  /** The shadow rule set in force, kept when a reload's shadow file is bad. */
  shadowRules: Rules | undefined;
}

/**
 * The candidate `rules.shadow` names. At start-up a bad one is fatal like a bad rule set; on a reload
 * it is logged (file:line:key) and the shadow in force stays, while the live rule set is applied.
 */
async function shadowOf(rules: Rules, logger: Logger, previous?: Running): Promise<Rules | undefined> {
  try {
    return await loadShadowRules(rules);
  } catch (err) {
    if (!previous) throw err;
    logger.error({ err: (err as Error).message }, 'shadow rule set refused: the shadow in force stays');
    return rules.shadow ? previous.shadowRules : undefined;
  }
}

/**
 * One generation of the edge. A reload whose `dns` settings are unchanged keeps the DNSBL cache and
 * zone health of `previous` (answers within their TTL stay good), checking only zones it adds; one
 * whose back end and pool settings are unchanged keeps the back-end pool and its idle sessions.
 */
async function build(rules: Rules, clock: Clock, metrics: Metrics, logger: Logger, limits: LimitPorts, inProcess: InProcessBackend | undefined, previous?: Running): Promise<Running> {
  if (!rules.backend) throw new Error("the rule set has no 'backend' (backend.url: smtp://host:port)");
  const { host, port } = parseSmtpUrl(rules.backend.url, 'backend.url');
  const shadowRules = await shadowOf(rules, logger, previous);
  let dnsbl: DnsblRuntime;
  if (previous && JSON.stringify(previous.dns) === JSON.stringify(rules.dns)) {
    dnsbl = previous.dnsbl;
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
  // The candidate asks through the same cache and zone health; the zones it adds are checked too.
  await dnsbl.health.setZones([...new Set([...dnsblZones(rules), ...(shadowRules ? dnsblZones(shadowRules) : [])])]);
  const deps = { dnsbl: dnsbl.lookup, health: dnsbl.health, hostNames: dnsbl.hostNames };
  const engine = new PolicyEngine(rules, {
    ...deps,
    directory: DirectoryModel.fromRules(rules),
    onDnsblScore: (score) => metrics.dnsblScore(score.total, score.contributions),
    limits,
    ...(rules.listeners.some((l) => l.senderAuth) ? { senderAuth: openSenderAuth(rules, clock) } : {}),
  });
  // The candidate counts nothing (no rate-limit counters, greylisting triplets or score metrics) and
  // runs no sender authentication: its verdicts stop at the envelope and header checks.
  const shadow = shadowRules && new PolicyEngine(shadowRules, { ...deps, directory: DirectoryModel.fromRules(shadowRules) });
  const target: BackendTarget = {
    host,
    port,
    timeoutMs: rules.backend.timeoutMs,
    ...(rules.backend.connectTimeoutMs !== undefined ? { connectTimeoutMs: rules.backend.connectTimeoutMs } : {}),
    starttls: rules.backend.starttls,
    tlsRejectUnauthorized: rules.backend.tlsRejectUnauthorized,
    heloName: rules.hostname,
    ...(inProcess && inProcess.host === host && inProcess.port === port ? { inProcess } : {}),
  };
  const old = previous?.generation.pool;
  const same = old && JSON.stringify([old.target, old.config]) === JSON.stringify([target, rules.backend.pool]);
  const pool = same ? old : new BackendPool(target, rules.backend.pool, { reused: () => metrics.backendReused(), opened: () => metrics.backendOpened() });
  return {
    dnsbl,
    dns: rules.dns,
    shadowRules,
    poolMetrics: same && previous ? previous.poolMetrics : metrics.backendPool(() => pool.counts),
    generation: { engine, ...(shadow ? { shadow } : {}), pool, badmail: new BadmailWriter(badmailDir(rules)) },
  };
}

/** A replaced pool lends nothing more: idle sessions are told QUIT, lent ones when their transaction ends. */
function retirePool(old: Running, next: Running | undefined): void {
  if (next?.generation.pool === old.generation.pool) return;
  // Sessions still lent out are no longer counted in the gauge; they close as their transactions end.
  void old.generation.pool.close().then(() => old.poolMetrics.stop());
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
  const limits = limitPorts(rules, options, clock, metrics, logger);
  let current = await build(rules, clock, metrics, logger, limits, options.inProcessBackend);
  const protocolLog = rules.log.protocolLog ? await ProtocolLog.open(rules.log.protocolLog) : undefined;
  const records = rules.records ? await openRecordLog(rules.records, metrics, logger, clock) : undefined;
  const services = { logger, metrics, state: limits.store, generation: () => current.generation, ...(protocolLog ? { protocolLog } : {}), ...(records ? { records } : {}) };
  const listeners: EdgeListener[] = [];
  let metricsServer: MetricsServer | undefined;
  try {
    for (const config of rules.listeners) listeners.push(await EdgeListener.start(config, rules.hostname, services));
    if (rules.metrics) metricsServer = await startMetricsServer(rules.metrics.listen, metrics, () => ({ status: 'ok' }));
  } catch (err) {
    for (const l of listeners) l.stopAccepting();
    current.dnsbl.close();
    await closeLimits(limits, options);
    throw err;
  }
  const addresses = Object.fromEntries(listeners.map((l) => [l.config.name, l.address]));
  for (const l of listeners) logger.info({ listener: l.config.name, ...l.address }, 'listening');

  const prepare = async (): Promise<PreparedReload> => {
    let next: Running;
    let loaded: Rules;
    try {
      loaded = await source.load();
      const mismatch = listenerMismatch(rules.listeners, loaded);
      if (mismatch !== undefined) throw new Error(mismatch);
      next = await build(loaded, clock, metrics, logger, limits, options.inProcessBackend, current);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'reload refused: the rule set cannot be applied; the old one stays');
      throw err;
    }
    return {
      rules: loaded,
      commit: () => {
        // Sessions in flight hold the old generation; a replaced DNSBL cache still answers them, only
        // its periodic health checks stop.
        if (next.dnsbl !== current.dnsbl) current.dnsbl.close();
        retirePool(current, next);
        current = next;
        logger.info('rule set reloaded');
        return loaded;
      },
      abort: () => {
        if (next.dnsbl !== current.dnsbl) next.dnsbl.close();
        retirePool(next, current);
      },
    };
  };

  return {
    addresses,
    metrics,
    ...(metricsServer ? { metricsAddress: metricsServer.address } : {}),
    prepare,
    async reload() {
      return (await prepare()).commit();
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
      await current.generation.pool.close();
      current.poolMetrics.stop();
      current.dnsbl.close();
      await closeLimits(limits, options);
      await metricsServer?.close();
      await protocolLog?.close();
      await records?.flush();
      return { sessions, cut, ms: Date.now() - started };
    },
  };
}

/**
 * The ports of rate limits, back pressure and greylisting, for the process's lifetime: `state` and
 * the probe are read at start-up (a reload keeps them). The store never fails to open: an
 * unreachable Redis is logged and counted, and the local view answers until it is back.
 */
function limitPorts(rules: Rules, options: EdgeOptions, clock: Clock, metrics: Metrics, logger: Logger): LimitPorts {
  const store =
    options.state ??
    openStateStore(rules.state, clock, {
      onState: (up, reason) => {
        metrics.stateStore(up);
        if (up) logger.info({ event: 'state-store', up }, 'state store reachable: limits and greylisting are shared again');
        else logger.warn({ event: 'state-store', up, reason }, "state store unreachable: limits and greylisting use this process's local view");
      },
      onError: () => metrics.stateStoreError(),
    });
  // The memory store always answers; a Redis store reports itself as it connects.
  if (!rules.state) metrics.stateStore(true);
  const probe = options.probe ?? (rules.backPressure ? processResourceProbe(rules.backPressure.sampleIntervalMs) : undefined);
  return {
    store,
    clock,
    ...(probe ? { probe } : {}),
    events: {
      rateLimited: (limit) => metrics.rateLimit(limit),
      greylisting: (outcome) => metrics.greylisting(outcome),
      backPressure: (under, reason) => {
        metrics.backPressure(under);
        if (under) logger.warn({ event: 'back-pressure', under, reason }, 'back pressure: refusing new connections and transactions');
        else logger.info({ event: 'back-pressure', under, reason }, 'back pressure over');
      },
    },
  };
}

/** Closes what limitPorts opened (a store or probe handed in belongs to the caller). */
async function closeLimits(limits: LimitPorts, options: EdgeOptions): Promise<void> {
  if (!options.probe) limits.probe?.stop();
  if (!options.state) await limits.store.close();
}
