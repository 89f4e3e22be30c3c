/**
 * Every Prometheus metric Portcullis exports, on a registry of its own (never prom-client's global
 * one, so that two instances — or two tests — never share counters). Labels are low-cardinality by
 * construction: anything that looks like an address or a mailbox is replaced before it becomes one.
 * Longer than 350 lines because it is the one registry: every metric's name and help text in one
 * place, declared once, each with the one method that counts it.
 */
import net from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { TalliedCounter, TalliedGauge, TalliedHistogram } from './tally.js';

export type DnsblOutcome = 'listed' | 'not-listed' | 'error' | 'timeout';
/**
 * How a back-end transaction ended: `delivered` (2xx after the dot), `tempfail` / `rejected` (the back
 * end's own 4xx / 5xx, passed on), `failed` (the back end unreachable, silent or gone: the client got
 * 451 4.7.0), `aborted` (the client went away mid-DATA: the back end never saw the dot).
 */
export type RelayOutcome = 'delivered' | 'tempfail' | 'rejected' | 'failed' | 'aborted';
export type HarvestEvent = 'delayed' | 'disconnected';
/** What the verdict counter labels a decision by: a policy Verdict fits it, without metrics depending on the policy. */
export interface DecisionLabels {
  step: number;
  check: string;
  rule?: string;
  action: string;
  reportOnly?: boolean;
}
export const ZONE_STATES = ['healthy', 'unhealthy', 'unreachable'] as const;
export type ZoneHealthState = (typeof ZONE_STATES)[number];

/** One queue state as the transport engine's metrics show it. */
export interface TransportQueueStats {
  count: number;
  oldestAgeSeconds?: number;
  /** Earliest scheduled retry of a message in the state (ms epoch). */
  nextRetryAt?: number;
}

export interface MetricsOptions {
  /** Also export the process's CPU, memory, event-loop and GC metrics (`portcullis_process_*`, `portcullis_nodejs_*`). */
  processMetrics?: boolean;
}

/** Stands in for a label value that would have carried an address, a network or a mailbox. */
export const REDACTED_LABEL = 'list-entry';

const IPV4_IN_TEXT = /\b\d{1,3}(\.\d{1,3}){3}\b/;
const IPV6_IN_TEXT = /[0-9a-f]{0,4}:[0-9a-f]{0,4}:[0-9a-f:.]*/i;

/** Whether a label value would leak a client address, a network or a mailbox into the metrics. */
export function isAddressLike(value: string): boolean {
  return value.includes('@') || net.isIP(value.split('/')[0] ?? '') !== 0 || IPV4_IN_TEXT.test(value) || IPV6_IN_TEXT.test(value);
}

/**
 * Label values already judged. Every decision labels its check and rule, so the same few configured
 * names are judged per message; remembering them saves isAddressLike's four tests each time. Bounded,
 * so that a stream of distinct values (which would be a bug elsewhere) costs only the tests.
 */
const judgedLabels = new Map<string, string>();
const JUDGED_LABELS_MAX = 1024;

/** A label value that is safe to export: configured names pass, addresses and mailboxes do not. */
export function safeLabel(value: string | undefined): string {
  if (value === undefined || value === '') return 'none';
  let safe = judgedLabels.get(value);
  if (safe === undefined) {
    safe = isAddressLike(value) ? REDACTED_LABEL : value;
    if (judgedLabels.size < JUDGED_LABELS_MAX) judgedLabels.set(value, safe);
  }
  return safe;
}

/** Points a list of the DNSBL scoring mode added to one session's score (a policy Contribution fits it). */
export interface ScoreContribution {
  list: string;
  points: number;
}

/** Session scores: thresholds are small integers, as postscreen's are. */
const SCORE_BUCKETS = [-20, -10, -5, -3, -2, -1, 0, 1, 2, 3, 5, 8, 10, 20];

/** Seconds buckets for DNS answers: a cache hit is microseconds, a resolver miss tens of milliseconds. */
const DNS_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];
/** `portcullis_replies_total`'s class label by the reply code's first digit, not built per reply. */
const REPLY_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx', '6xx', '7xx', '8xx', '9xx'];
const replyLabels = (cls: string): { class: string } => ({ class: cls });
const relayLabels = (outcome: string): { outcome: string } => ({ outcome });
const listenerLabels = (listener: string): { listener: string } => ({ listener });
/** A decision's labels in the order `verdict` counts them: step, check, rule, action, report_only. */
const VERDICT_PATH: [number, string, string, string, string] = [0, '', '', '', ''];
const verdictLabels = (path: readonly unknown[]): { step: string; check: string; rule: string; action: string; report_only: string } => ({
  step: String(path[0]),
  check: path[1] as string,
  rule: path[2] as string,
  action: path[3] as string,
  report_only: path[4] as string,
});
/** A DNSBL lookup's labels in the order `dnsblLookup` counts them: zone, outcome, cached; and zone, cached for its time. */
const DNSBL_LOOKUP_PATH: [string, string, boolean] = ['', '', false];
const dnsblLookupLabels = (path: readonly unknown[]): { zone: string; outcome: string; cached: string } => ({
  zone: path[0] as string,
  outcome: path[1] as string,
  cached: String(path[2]),
});
const DNSBL_SECONDS_PATH: [string, boolean] = ['', false];
const dnsblSecondsLabels = (path: readonly unknown[]): { zone: string; cached: string } => ({ zone: path[0] as string, cached: String(path[1]) });
/** Seconds buckets for a whole back-end transaction, from MAIL FROM to the reply after the dot. */
const RELAY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The metrics registry and one method per thing that is counted. */
export class Metrics {
  readonly registry = new Registry();

  private readonly sessions = new TalliedCounter({
    name: 'portcullis_sessions_total',
    help: 'SMTP sessions opened, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  private readonly openConnections = new TalliedGauge({
    name: 'portcullis_open_connections',
    help: 'SMTP connections open right now, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  private readonly healthChecks = new Counter({
    name: 'portcullis_health_checks_total',
    help: "Load-balancer health checks answered (PROXY v2 LOCAL, or a v1 header describing the balancer's own connection), by listener; never counted as sessions.",
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  private readonly replies = new TalliedCounter({
    name: 'portcullis_replies_total',
    help: 'Replies written to SMTP clients, by code class (2xx, 3xx, 4xx, 5xx).',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  private readonly verdicts = new TalliedCounter({
    name: 'portcullis_verdicts_total',
    help: 'Filter decisions, by guide step, check, rule name, action and whether the rule is report-only.',
    labelNames: ['step', 'check', 'rule', 'action', 'report_only'] as const,
    registers: [this.registry],
  });
  private readonly dnsblLookups = new TalliedCounter({
    name: 'portcullis_dnsbl_lookups_total',
    help: 'DNSBL lookups, by zone, outcome (listed, not-listed, error, timeout) and whether the cache answered.',
    labelNames: ['zone', 'outcome', 'cached'] as const,
    registers: [this.registry],
  });
  private readonly dnsblSeconds = new TalliedHistogram({
    name: 'portcullis_dnsbl_lookup_seconds',
    help: 'Time to answer a DNSBL lookup, by zone and whether the cache answered.',
    labelNames: ['zone', 'cached'] as const,
    buckets: DNS_BUCKETS,
    registers: [this.registry],
  });
  private readonly zoneState = new Gauge({
    name: 'portcullis_dnsbl_zone_health',
    help:
      'RFC 5782 health of each DNSBL zone at its last check, one series per state, 1 for the state it is in: healthy; ' +
      'unhealthy (answers wrongly: its rule rejects nothing); unreachable (the check could not complete: its rule is enforced, onError decides).',
    labelNames: ['zone', 'state'] as const,
    // Under `workers` the group shows a state if any worker's zone is in it (summed, an alert's `== 1` would miss it).
    aggregator: 'max',
    registers: [this.registry],
  });
  private readonly dnsblScores = new Histogram({
    name: 'portcullis_dnsbl_score',
    help: 'DNSBL scoring mode: the score of each session that computed one (the sum of its lists\' weights).',
    buckets: SCORE_BUCKETS,
    registers: [this.registry],
  });
  private readonly dnsblListHits = new Counter({
    name: 'portcullis_dnsbl_list_hits_total',
    help: 'DNSBL scoring mode: sessions in which a list added points to the score, by list name and sign (positive: block list, negative: allowlist).',
    labelNames: ['list', 'sign'] as const,
    registers: [this.registry],
  });
  private readonly dnsblListPoints = new Counter({
    name: 'portcullis_dnsbl_list_points_total',
    help: 'DNSBL scoring mode: points each list added to session scores, as an absolute value, by list name and sign.',
    labelNames: ['list', 'sign'] as const,
    registers: [this.registry],
  });
  private readonly authResults = new Counter({
    name: 'portcullis_auth_results_total',
    help: 'Sender authentication results (SPF, DKIM, DMARC, ARC), by mechanism, result and what the edge did.',
    labelNames: ['mechanism', 'result', 'action'] as const,
    registers: [this.registry],
  });
  private readonly relays = new TalliedCounter({
    name: 'portcullis_relay_total',
    help: "Back-end relay transactions, by outcome: delivered, tempfail (the back end's 4xx), rejected (its 5xx), failed (back end unreachable or gone: 451 4.7.0 to the client), aborted (the client left mid-DATA).",
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly relaySeconds = new TalliedHistogram({
    name: 'portcullis_relay_seconds',
    help: 'Duration of back-end relay transactions, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: RELAY_BUCKETS,
    registers: [this.registry],
  });
  /** Each pool's counts, read when /metrics is scraped (nothing to do per message). */
  private readonly poolSources = new Set<() => { idle: number; busy: number }>();
  private readonly poolSessions = new Gauge({
    name: 'portcullis_backend_pool_sessions',
    help: 'Back-end sessions of the pool, by state: idle (open, waiting to be lent) and busy (lent to a client transaction).',
    labelNames: ['state'],
    registers: [this.registry],
    collect: () => this.collectPools(),
  });
  private readonly poolOpened = new Counter({
    name: 'portcullis_backend_pool_opened_total',
    help: 'Back-end connections opened for client transactions (no idle pooled session was there to lend, or a lent one had gone).',
    registers: [this.registry],
  });
  private readonly poolReused = new Counter({
    name: 'portcullis_backend_pool_reused_total',
    help: 'Client transactions that borrowed an idle pooled back-end session instead of opening a connection.',
    registers: [this.registry],
  });
  private readonly badmails = new Counter({
    name: 'portcullis_badmail_total',
    help: 'Messages written to the Badmail directory by the archive action.',
    registers: [this.registry],
  });
  private readonly harvests = new Counter({
    name: 'portcullis_harvest_total',
    help: 'Harvest protection events: replies delayed, and sessions disconnected.',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  private readonly rateLimited = new Counter({
    name: 'portcullis_rate_limited_total',
    help: 'Clients refused by a rate or concurrency limit, by limit (e.g. client.connectionsPerMinute, sender.messagesPerMinute).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  private readonly greylist = new Counter({
    name: 'portcullis_greylisting_total',
    help: 'Greylisting decisions per recipient, by outcome: deferred, passed (a retry after the delay), known (a triplet that passed before), allowlisted (its network passed often enough), exempt, skipped (accept list, relay client).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly backPressureActive = new Gauge({
    name: 'portcullis_back_pressure',
    help: 'Back pressure: 1 while the event loop lag or resident memory is past its bound (new connections 421 4.3.2, new transactions 452 4.3.1), else 0.',
    aggregator: 'max',
    registers: [this.registry],
  });
  private readonly backPressureEpisodes = new Counter({
    name: 'portcullis_back_pressure_episodes_total',
    help: 'Times the process went under back pressure.',
    registers: [this.registry],
  });
  private readonly stateStoreUp = new Gauge({
    name: 'portcullis_state_store_up',
    help: 'The shared state store (Redis/Valkey): 1 while it answers, 0 while limits and greylisting run on this process\'s local view.',
    // Under `workers`, 0 as soon as one worker has lost the store.
    aggregator: 'min',
    registers: [this.registry],
  });
  private readonly stateStoreErrors = new Counter({
    name: 'portcullis_state_store_errors_total',
    help: 'Calls the shared state store failed, each answered from the local view instead.',
    registers: [this.registry],
  });

  private readonly shadows = new Counter({
    name: 'portcullis_shadow_total',
    help: 'Decisions judged by both the live and the shadow rule set, by the step and rule that decide (docs/shadow.md) and each side\'s action.',
    labelNames: ['step', 'rule', 'live', 'shadow'] as const,
    registers: [this.registry],
  });
  private readonly protocolTests = new Counter({
    name: 'portcullis_protocol_tests_total',
    help: 'Protocol tests at the door (docs/protocol-tests.md): pre-greeting, pipelining, helo; result pass, cached, fail or tempfail.',
    labelNames: ['test', 'result'] as const,
    registers: [this.registry],
  });
  private readonly transportReceived = new Counter({
    name: 'portcullis_transport_received_total',
    help: 'Transport engine: messages queued (answered 250) or refused (storage failure, client not allowed), by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly transportQueueLength = new Gauge({
    name: 'portcullis_transport_queue_messages',
    help: 'Transport engine: messages in each queue state right now (pre-submission, local-delivery, remote-delivery summed over destinations, ...).',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });
  private readonly transportQueueOldest = new Gauge({
    name: 'portcullis_transport_queue_oldest_message_age_seconds',
    help: 'Transport engine: age of the oldest message in each queue state that holds any (since it was received), as of the last queue run.',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });
  private readonly transportQueueNextRetry = new Gauge({
    name: 'portcullis_transport_queue_next_retry_timestamp_seconds',
    help: 'Transport engine: when the next retry of a message waiting in each queue state is due (Unix time); one in the past means mail nobody is working on.',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });
  private readonly transportDeliveries = new Counter({
    name: 'portcullis_transport_deliveries_total',
    help: 'Transport engine: delivery attempts per recipient copy, by outcome (delivered locally, transferred to a remote host, deferred, failed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly transportDeliverySeconds = new Histogram({
    name: 'portcullis_transport_delivery_seconds',
    help: 'Transport engine: time from receipt to final delivery of a recipient copy, by outcome (delivered, transferred).',
    labelNames: ['outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 48 * 3600],
    registers: [this.registry],
  });
  private readonly transportDsns = new Counter({
    name: 'portcullis_transport_dsns_total',
    help: 'Transport engine: delivery status notifications generated, by action (failed, delayed, delivered, relayed), and bounces sent to Badmail (badmail).',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });
  private readonly transportRetries = new Counter({
    name: 'portcullis_transport_retries_total',
    help: 'Transport engine: messages scheduled for another attempt, by queue state.',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  private readonly recordsWritten = new Counter({
    name: 'portcullis_records_written_total',
    help: 'Decision records written to the record log.',
    registers: [this.registry],
  });
  private readonly recordsDropped = new Counter({
    name: 'portcullis_records_dropped_total',
    help: 'Decision records dropped, by reason: the write buffer was full, or the disk failed.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(options: MetricsOptions = {}) {
    // Both reasons exist from the start at 0, so a drop shows as a rise, not as a series appearing.
    for (const reason of ['full', 'disk'] as const) this.recordsDropped.inc({ reason }, 0);
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' });
  }

  /** Decision records written (`written`) or dropped, never delaying mail (`full`: buffer, `disk`: a write failed). */
  records(outcome: 'written' | 'full' | 'disk', count = 1): void {
    if (outcome === 'written') this.recordsWritten.inc(count);
    else this.recordsDropped.inc({ reason: outcome }, count);
  }

  /** A client connected to a listener. */
  sessionOpened(listener: string): void {
    const l = safeLabel(listener);
    this.sessions.inc(l, listenerLabels);
    this.openConnections.add(l, listenerLabels, 1);
  }

  /** A client connection on a listener ended, for whatever reason. */
  sessionClosed(listener: string): void {
    this.openConnections.add(safeLabel(listener), listenerLabels, -1);
  }

  /** A balancer's health check was answered on a listener. */
  healthCheck(listener: string): void {
    this.healthChecks.inc({ listener: safeLabel(listener) });
  }

  /** A reply went to a client; counted by its class only. */
  reply(code: number): void {
    const cls = REPLY_CLASSES[Math.floor(code / 100)] ?? `${Math.floor(code / 100)}xx`;
    this.replies.inc(cls, replyLabels);
  }

  /** A filter decided; the rule label is the configured rule's name, never an address. */
  verdict(v: DecisionLabels): void {
    // One array filled again for each decision (incAt reads it during the call only), three a message.
    const path = VERDICT_PATH;
    path[0] = v.step;
    path[1] = safeLabel(v.check);
    path[2] = safeLabel(v.rule);
    path[3] = v.action;
    path[4] = v.reportOnly === true ? 'true' : 'false';
    this.verdicts.incAt(path, verdictLabels);
  }

  /** A sender authentication step found `result`; `action`: accept, reject, tempfail, quarantine, report or exempt. */
  authResult(a: { mechanism: string; result: string; action: string }): void {
    this.authResults.inc({ mechanism: a.mechanism, result: a.result, action: a.action });
  }

  /** A DNSBL lookup finished (matches the DNS module's `onLookup` callback). */
  dnsblLookup(zone: string, outcome: DnsblOutcome, seconds: number, cached: boolean): void {
    // Two arrays filled again for each lookup (read during the call only), three lookups a connection.
    const z = safeLabel(zone);
    const counted = DNSBL_LOOKUP_PATH;
    counted[0] = z;
    counted[1] = outcome;
    counted[2] = cached;
    this.dnsblLookups.incAt(counted, dnsblLookupLabels);
    const timed = DNSBL_SECONDS_PATH;
    timed[0] = z;
    timed[1] = cached;
    this.dnsblSeconds.observeAt(timed, dnsblSecondsLabels, seconds);
  }

  /** A zone's RFC 5782 health check concluded in a new state. */
  zoneHealth(zone: string, state: ZoneHealthState): void {
    const z = safeLabel(zone);
    for (const s of ZONE_STATES) this.zoneState.set({ zone: z, state: s }, s === state ? 1 : 0);
  }

  /** A session's DNSBL score was computed: the total, and each list that added points to it. */
  dnsblScore(total: number, contributions: readonly ScoreContribution[]): void {
    this.dnsblScores.observe(total);
    for (const c of contributions) {
      if (c.points === 0) continue;
      const labels = { list: safeLabel(c.list), sign: c.points > 0 ? 'positive' : 'negative' };
      this.dnsblListHits.inc(labels);
      this.dnsblListPoints.inc(labels, Math.abs(c.points));
    }
  }

  /** A back-end transaction ended. */
  relay(outcome: RelayOutcome, seconds: number): void {
    this.relays.inc(outcome, relayLabels);
    this.relaySeconds.observe(outcome, relayLabels, seconds);
  }

  /** Counts `pool()`'s sessions in `portcullis_backend_pool_sessions` until `stop` is called. */
  backendPool(pool: () => { idle: number; busy: number }): { stop(): void } {
    this.poolSources.add(pool);
    return { stop: () => void this.poolSources.delete(pool) };
  }

  /** A client transaction borrowed an idle pooled back-end session. */
  backendReused(): void {
    this.poolReused.inc();
  }

  /** A back-end connection was opened for a client transaction. */
  backendOpened(): void {
    this.poolOpened.inc();
  }

  /** A message went to Badmail. */
  badmail(): void {
    this.badmails.inc();
  }

  /** Harvest protection delayed a reply or disconnected a session. */
  harvest(event: HarvestEvent = 'disconnected'): void {
    this.harvests.inc({ event });
  }

  /** A rate or concurrency limit refused a client; `limit` is the configured key. */
  rateLimit(limit: string): void {
    this.rateLimited.inc({ limit: safeLabel(limit) });
  }

  /** Greylisting judged one recipient. */
  greylisting(outcome: string): void {
    this.greylist.inc({ outcome });
  }

  /** The process went under back pressure, or came out of it. */
  backPressure(under: boolean): void {
    this.backPressureActive.set(under ? 1 : 0);
    if (under) this.backPressureEpisodes.inc();
  }

  /** The shared state store answers again, or does not. */
  stateStore(up: boolean): void {
    this.stateStoreUp.set(up ? 1 : 0);
  }

  /** One call to the shared state store failed (answered locally). */
  stateStoreError(): void {
    this.stateStoreErrors.inc();
  }

  /** The shadow rule set judged a decision the live one made; `live` and `shadow` are the two actions. */
  shadow(step: number, rule: string | undefined, live: string, shadow: string): void {
    this.shadows.inc({ step: String(step), rule: safeLabel(rule), live, shadow });
  }

  /** A protocol test judged a client. */
  protocolTest(test: 'pre-greeting' | 'pipelining' | 'helo', result: 'pass' | 'cached' | 'fail' | 'tempfail'): void {
    this.protocolTests.inc({ test, result });
  }

  /** The transport engine queued a message (answered 250) or refused one. */
  transportReceive(outcome: 'queued' | 'refused' | 'storage-error'): void {
    this.transportReceived.inc({ outcome });
  }

  /**
   * The transport engine's queues by queue state (a bounded set of labels): length, age of the oldest
   * message and the next retry (each only for a state that has one); states not listed are dropped.
   */
  transportQueues(stats: Record<string, TransportQueueStats>): void {
    this.transportQueueLength.reset();
    this.transportQueueOldest.reset();
    this.transportQueueNextRetry.reset();
    for (const [queue, q] of Object.entries(stats)) {
      const labels = { queue: safeLabel(queue) };
      this.transportQueueLength.set(labels, q.count);
      if (q.oldestAgeSeconds !== undefined) this.transportQueueOldest.set(labels, q.oldestAgeSeconds);
      if (q.nextRetryAt !== undefined) this.transportQueueNextRetry.set(labels, q.nextRetryAt / 1000);
    }
  }

  /** One recipient copy's delivery attempt ended; `seconds` (since receipt) for final deliveries. */
  transportDelivery(outcome: 'delivered' | 'transferred' | 'deferred' | 'failed', seconds?: number): void {
    this.transportDeliveries.inc({ outcome });
    if (seconds !== undefined) this.transportDeliverySeconds.observe({ outcome }, seconds);
  }

  /** The transport engine generated a DSN (or sent a failed bounce to Badmail). */
  transportDsn(action: 'failed' | 'delayed' | 'delivered' | 'relayed' | 'badmail'): void {
    this.transportDsns.inc({ action });
  }

  /** A queued message was scheduled for another attempt. */
  transportRetry(state: string): void {
    this.transportRetries.inc({ state: safeLabel(state) });
  }

  private collectPools(): void {
    let [idle, busy] = [0, 0];
    for (const counts of this.poolSources) {
      const c = counts();
      idle += c.idle;
      busy += c.busy;
    }
    this.poolSessions.set({ state: 'idle' }, idle);
    this.poolSessions.set({ state: 'busy' }, busy);
  }

  /** Every metric name this registry exports (the Grafana test checks panels against it). */
  names(): string[] {
    return this.registry.getMetricsAsArray().map((m) => m.name);
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
