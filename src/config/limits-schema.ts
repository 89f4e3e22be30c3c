/** The rule set's keys for rate limits, back pressure, greylisting and the state store (docs/limits.md). */
import { z } from 'zod';

const list = z.array(z.string()).default([]);

/** How much of a client address names its network: /24 and /48 unless configured (docs/limits.md). */
const NetworkPrefixSchema = z
  .object({
    ipv4: z.number().int().min(0).max(32).default(24),
    ipv6: z.number().int().min(0).max(128).default(48),
  })
  .strict()
  .prefault({});

const perMinute = z.number().int().positive().optional();

/** Rate and concurrency limits (docs/limits.md); absent = no limits. Each key absent = that limit off. */
export const RateLimitsSchema = z
  .object({
    networkPrefix: NetworkPrefixSchema,
    exempt: list,
    client: z
      .object({ connectionsPerMinute: perMinute, concurrentConnections: perMinute, messagesPerMinute: perMinute, recipientsPerMinute: perMinute })
      .strict()
      .prefault({}),
    network: z
      .object({ connectionsPerMinute: perMinute, concurrentConnections: perMinute, messagesPerMinute: perMinute, recipientsPerMinute: perMinute })
      .strict()
      .prefault({}),
    sender: z.object({ messagesPerMinute: perMinute, recipientsPerMinute: perMinute }).strict().prefault({}),
  })
  .strict();

/** Back pressure (docs/limits.md); absent = off. At least one bound is required. */
export const BackPressureSchema = z
  .object({
    maxEventLoopLagMs: z.number().int().positive().optional(),
    maxRssMb: z.number().int().positive().optional(),
    sampleIntervalMs: z.number().int().positive().default(1000),
  })
  .strict();

/** Greylisting (docs/limits.md); absent = off. */
export const GreylistingSchema = z
  .object({
    delaySec: z.number().int().nonnegative().default(300),
    retryWindowHours: z.number().positive().default(24),
    autoAllowAfter: z.number().int().positive().default(5),
    allowDays: z.number().positive().default(36),
    networkPrefix: NetworkPrefixSchema,
    exemptClients: list,
    exemptSenders: list,
  })
  .strict();

/** Where counters, triplets and caches live (docs/limits.md); absent = in this process's memory. */
export const StateSchema = z
  .object({
    url: z.string().regex(/^rediss?:\/\/\S+$/, 'expected redis://host:port (or rediss:// for TLS)'),
    timeoutMs: z.number().int().positive().default(500),
  })
  .strict();

export type RateLimitsConfig = z.infer<typeof RateLimitsSchema>;
export type BackPressureConfig = z.infer<typeof BackPressureSchema>;
export type GreylistingConfig = z.infer<typeof GreylistingSchema>;
export type StateConfig = z.infer<typeof StateSchema>;
