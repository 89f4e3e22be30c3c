import { z } from 'zod';
import { HOST_PORT, SMTP_URL } from '../net/endpoint.js';
import { BackPressureSchema, GreylistingSchema, RateLimitsSchema, StateSchema } from './limits-schema.js';

/**
 * The rule set an administrator writes (rules/portcullis.yaml), as validated.
 * List-valued keys may hold `{ file: path }` items in the YAML; the loader expands those into the
 * plain strings this schema sees, before validation.
 */

const hostPort = z
  .string()
  .regex(HOST_PORT, 'expected host:port, e.g. 0.0.0.0:25 or [::]:25');

const list = z.array(z.string()).default([]);

export const ListenerLimitsSchema = z
  .object({
    maxMessageSize: z.number().int().positive().default(10 * 1024 * 1024),
    maxRecipients: z.number().int().positive().default(5000),
    maxMessagesPerConnection: z.number().int().positive().default(20),
    maxSessionSize: z.number().int().positive().default(100 * 1024 * 1024),
    idleTimeoutMs: z.number().int().positive().default(300_000),
    dataTimeoutMs: z.number().int().positive().default(600_000),
    maxSessionMs: z.number().int().positive().default(900_000),
    maxConnections: z.number().int().positive().default(1000),
    maxConnectionsPerClient: z.number().int().positive().default(20),
  })
  .strict()
  .prefault({});

export const ListenerSchema = z
  .object({
    name: z.string().min(1),
    listen: hostPort,
    ipRestrictions: z
      .object({ default: z.enum(['grant', 'deny']).default('grant'), except: list })
      .strict()
      .prefault({}),
    filters: z
      .object({
        connection: z.boolean().default(true),
        sender: z.boolean().default(true),
        recipient: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    relayFrom: list,
    limits: ListenerLimitsSchema,
    proxyProtocol: z.object({ from: z.array(z.string()).min(1) }).strict().optional(),
    tls: z.object({ key: z.string(), cert: z.string() }).strict().optional(),
    reverseDns: z.boolean().default(false),
    /** Postscreen-style tests of the client's SMTP manners (docs/protocol-tests.md). */
    protocolTests: z
      .object({
        greetPauseMs: z.number().int().nonnegative().max(60_000, 'at most 60000 (ms): senders give up on a greeting after a few minutes, bots are caught in seconds').default(0),
        pipelining: z.boolean().default(false),
        cacheTtlSec: z.number().int().positive().default(86_400),
      })
      .strict()
      .prefault({}),
    heloChecks: z
      .object({ syntax: z.boolean().default(false), notOurs: z.boolean().default(false), fcrdns: z.boolean().default(false) })
      .strict()
      .prefault({}),
    /** SPF, DKIM, DMARC and ARC on this listener (docs/sender-auth.md); absent = none of them. */
    senderAuth: z
      .object({
        enforceSpf: z.boolean().default(false),
        enforceDmarc: z.boolean().default(false),
        onTempError: z.enum(['accept', 'tempfail']).default('accept'),
        reportOnly: z.boolean().default(false),
      })
      .strict()
      .optional(),
  })
  .strict();

const dottedQuad = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'expected a dotted quad such as 0.0.0.6');

export const DnsblMatchSchema = z.union([
  z.literal('any'),
  z.object({ mask: dottedQuad }).strict(),
  z.object({ maskAny: dottedQuad }).strict(),
  z.object({ codes: z.array(dottedQuad).min(1) }).strict(),
], { error: 'expected any, { mask: 0.0.0.N }, { maskAny: 0.0.0.N } or { codes: [127.0.0.N, ...] }' });

export const DnsblRuleSchema = z
  .object({
    name: z.string().min(1),
    zone: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/, 'expected a DNS zone name'),
    provider: z.string().optional(),
    match: DnsblMatchSchema.default('any'),
    message: z.string().optional(),
    reportOnly: z.boolean().default(false),
    onError: z.enum(['accept', 'tempfail']).default('accept'),
    /** An allowlist (DNSWL): an enforced hit skips the rest of step 9, as the accept list does (docs/dnsbl-scoring.md). */
    allow: z.boolean().optional(),
  })
  .strict();

/** One list of step 9's scoring mode (docs/dnsbl-scoring.md): what a listing adds to the session's score. */
export const DnsblScoreListSchema = z
  .object({
    name: z.string().min(1),
    zone: DnsblRuleSchema.shape.zone,
    provider: z.string().optional(),
    match: DnsblMatchSchema.optional(),
    /** Added once when `match` (default any) matches; negative for an allowlist. */
    weight: z.number().int().optional(),
    /** Per listing code: each code of the answer found here adds its weight. */
    weights: z.record(dottedQuad, z.number().int()).optional(),
    message: z.string().optional(),
  })
  .strict();

/** Step 9 as a score: the sum of the lists' weights against two thresholds (docs/dnsbl-scoring.md). */
export const DnsblScoringSchema = z
  .object({
    threshold: z.number().int(),
    allowThreshold: z.number().int().optional(),
    message: z.string().optional(),
    lists: z.array(DnsblScoreListSchema),
  })
  .strict();

const emailAddress = z.string().regex(/^[^@\s<>]+@[^@\s<>]+$/, 'expected an e-mail address, local@domain');

export const DirectorySchema = z
  .object({
    addresses: list,
    mailboxes: z
      .array(
        z
          .object({
            address: emailAddress,
            proxyAddresses: z.array(emailAddress).default([]),
            quotaBytes: z.number().int().positive().optional(),
          })
          .strict(),
      )
      .default([]),
    aliases: z.array(z.object({ address: emailAddress, forwardTo: z.array(emailAddress).min(1) }).strict()).default([]),
    groups: z.array(z.object({ address: emailAddress, members: z.array(emailAddress).default([]) }).strict()).default([]),
    forwardUnresolvedTo: hostPort.optional(),
  })
  .strict()
  .prefault({});

const addressSpace = z
  .string()
  .regex(/^(\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$/, "expected '*', '*.suffix' or a domain");

export const ConnectorSchema = z
  .object({
    name: z.string().min(1),
    addressSpaces: z.array(addressSpace).min(1),
    cost: z.number().int().nonnegative().default(1),
    smartHost: z.union([hostPort, z.array(hostPort).min(1)]).optional(),
    enabled: z.boolean().default(true),
  })
  .strict();

export const TransportSchema = z
  .object({
    connectors: z.array(ConnectorSchema).default([]),
    remote: z
      .object({
        maxConnections: z.number().int().positive().default(100),
        maxPerDomain: z.number().int().positive().default(10),
        timeoutMs: z.number().int().positive().default(60_000),
        requireTls: z.boolean().default(false),
        port: z.number().int().min(1).max(65535).default(25),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxMessageSize: z.number().int().positive().default(10 * 1024 * 1024),
        maxRecipients: z.number().int().positive().default(5000),
        maxHopCount: z.number().int().positive().default(15),
      })
      .strict()
      .prefault({}),
    /** The engine's own SMTP listener, the store on disk, the schedule and the admin interface (docs/transport.md). */
    listen: hostPort.default('127.0.0.1:2526'),
    allowFrom: z.array(z.string()).default(['127.0.0.1', '::1']),
    dataDir: z.string().min(1).default('data'),
    queueDir: z.string().min(1).optional(),
    mailboxDir: z.string().min(1).optional(),
    trackingLog: z.string().min(1).optional(),
    fsync: z.boolean().default(true),
    retry: z
      .object({
        intervalsMinutes: z.array(z.number().positive()).default([10, 10, 10]),
        thenEveryMinutes: z.number().positive().default(15),
        delayNotifyHours: z.number().positive().default(12),
        expireHours: z.number().positive().default(48),
        failedRetryMinutes: z.number().positive().default(60),
      })
      .strict()
      .prefault({}),
    dsn: z.object({ from: z.string().min(1).optional(), copyNdrTo: emailAddress.optional() }).strict().prefault({}),
    admin: z.object({ listen: hostPort.default('127.0.0.1:2527') }).strict().prefault({}),
  })
  .strict()
  .prefault({});

/** Back-end sessions kept open and reused across client transactions (docs/backend-pool.md); maxIdle 0 turns pooling off. */
export const BackendPoolSchema = z
  .object({
    maxIdle: z.number().int().nonnegative().default(100),
    idleMs: z.number().int().positive().default(5000),
    maxTransactions: z.number().int().positive().default(1000),
  })
  .strict()
  .prefault({});

/** The SMTP server the edge relays to (docs/edge.md). */
export const BackendSchema = z
  .object({
    /** `bundled` (as when `backend` is absent): `serve` starts the bundled transport engine and relays to it. */
    url: z.union([z.literal('bundled'), z.string().regex(SMTP_URL, 'expected smtp://host:port or bundled')]),
    timeoutMs: z.number().int().positive().default(5000),
    connectTimeoutMs: z.number().int().positive().optional(),
    starttls: z.boolean().default(false),
    tlsRejectUnauthorized: z.boolean().default(true),
    pool: BackendPoolSchema,
  })
  .strict();

const WORKERS = { error: 'expected auto or a whole number of processes, 1 or more' };
export const RulesSchema = z
  .object({
    hostname: z.string().min(1),
    acceptedDomains: z.array(z.string().min(1)).min(1),
    listeners: z.array(ListenerSchema).min(1),
    connectionFilter: z
      .object({ accept: list, deny: list, exceptions: list, rules: z.array(DnsblRuleSchema).default([]), scoring: DnsblScoringSchema.optional() })
      .strict()
      .prefault({}),
    senderFilter: z
      .object({
        blocked: list,
        blankSender: z.boolean().default(false),
        action: z.enum(['reject', 'drop', 'archive']).default('reject'),
      })
      .strict()
      .prefault({}),
    recipientFilter: z
      .object({ blocked: list, rejectUnknown: z.boolean().default(false) })
      .strict()
      .prefault({}),
    directory: DirectorySchema,
    harvest: z
      .object({
        delayAfter: z.number().int().nonnegative().default(5),
        delayMs: z.number().int().nonnegative().default(2000),
        disconnectAfter: z.number().int().positive().default(10),
      })
      .strict()
      .prefault({}),
    dns: z
      .object({
        servers: z.array(hostPort).min(1).default(['127.0.0.1:53']),
        timeoutMs: z.number().int().positive().default(1500),
        cacheSize: z.number().int().positive().default(10_000),
        healthCheckIntervalSec: z.number().int().nonnegative().default(300),
      })
      .strict()
      .prefault({}),
    /** Prometheus `/metrics` and `/healthz`; absent = no metrics endpoint. */
    metrics: z.object({ listen: hostPort.default('127.0.0.1:9325') }).strict().optional(),
    /** The SMTP server the edge relays to (docs/edge.md); absent = the bundled transport engine. */
    backend: BackendSchema.optional(),
    /** Messages kept by the archive action and bounces the engine could not return; default `<transport.dataDir>/badmail`. */
    badmail: z.string().min(1).optional(),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        protocolLog: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    /** The decision record log (docs/records.md); absent = no records. */
    records: z
      .object({
        path: z.string().min(1),
        keepDays: z.number().int().positive().default(14),
        maxBytes: z.number().int().positive().default(100 * 1024 * 1024),
        hashLocalParts: z.boolean().default(false),
      })
      .strict()
      .optional(),
    shutdownGraceMs: z.number().int().nonnegative().default(30_000),
    /** Edge processes `serve` runs, sharing the listening sockets (docs/workers.md); `auto` = one per core. */
    workers: z.union([z.literal('auto'), z.number().int(WORKERS).positive(WORKERS)], WORKERS).default(1),
    /** A candidate rule set judged beside the live one on every session, with no effect (docs/shadow.md). */
    shadow: z.object({ rules: z.string().min(1) }).strict().optional(),
    /** Settings shared by the listeners that have `senderAuth` (docs/sender-auth.md). */
    senderAuth: z
      .object({
        authservId: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'expected a host name').optional(),
        timeoutMs: z.number().int().positive().default(5000),
        exempt: z
          .object({
            clients: list,
            domains: z.array(z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'expected a domain name')).default([]),
          })
          .strict()
          .prefault({}),
        spool: z
          .object({ memoryBytes: z.number().int().nonnegative().default(256 * 1024), dir: z.string().min(1).optional() })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    transport: TransportSchema,
    rateLimits: RateLimitsSchema.optional(),
    backPressure: BackPressureSchema.optional(),
    greylisting: GreylistingSchema.optional(),
    state: StateSchema.optional(),
  })
  .strict();

export type Rules = z.infer<typeof RulesSchema>;
export type ListenerConfig = z.infer<typeof ListenerSchema>;
export type BackendPoolConfig = z.infer<typeof BackendPoolSchema>;
export type SenderAuthConfig = Rules['senderAuth'];
export type ListenerSenderAuth = NonNullable<ListenerConfig['senderAuth']>;
export type DnsblRuleConfig = z.infer<typeof DnsblRuleSchema>;
export type DnsblMatch = z.infer<typeof DnsblMatchSchema>;
export type DnsblScoringConfig = z.infer<typeof DnsblScoringSchema>;
export type DnsblScoreListConfig = z.infer<typeof DnsblScoreListSchema>;
export type ConnectorConfig = z.infer<typeof ConnectorSchema>;
export type DirectoryConfig = z.infer<typeof DirectorySchema>;
