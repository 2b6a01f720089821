/**
 * The sending limits and the duplicate ledger from the environment, around the live `SmtpConnection`:
 * `EMAIL_RATE_LIMIT` / `RATE_LIMIT_DOMAINS` (`RateLimitedSmtp.ts`), the ledger (`SentLedger.ts`, `DEDUPE_STORE`,
 * `DEDUPE_TTL`), both in Redis when `REDIS_URL` is set (`RedisConnection.ts`, `REDIS_KEY_PREFIX`, `REDIS_OUTAGE`).
 * With none of them set, the SMTP layer is used as it is: nothing is added to a send.
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Duration, Effect, Layer, Option, Redacted } from "effect"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import {
  DedupeStoreSetting,
  DedupeTtlSetting,
  EmailRateLimitSetting,
  RateLimitDomainsSetting,
  RedisKeyPrefixSetting,
  RedisOutageSetting,
  RedisUrlSetting
} from "../config/limitSettings.ts"
import { DatabaseUrlSetting, EmailPortSetting, redactUrl } from "../config/connectionSettings.ts"
import { MessageIdHostSetting } from "../config/settingValues.ts"
import type { SmtpConnection } from "../smtp/SmtpConnection.ts"
import type { SmtpStatus } from "../smtp/SmtpStatus.ts"
import * as RateLimitedSmtp from "./RateLimitedSmtp.ts"
import * as RateLimiterStore from "./RateLimiterStore.ts"
import * as RedisConnection from "./RedisConnection.ts"
import * as SentLedger from "./SentLedger.ts"

export const limitsConfig = Config.all({
  rates: EmailRateLimitSetting,
  domains: RateLimitDomainsSetting,
  redisUrl: RedisUrlSetting,
  prefix: RedisKeyPrefixSetting,
  onOutage: RedisOutageSetting,
  dedupeStore: DedupeStoreSetting,
  dedupeTtl: DedupeTtlSetting,
  // the SMTP account the limits are the provider's for: workers sending through the same one share them
  account: Config.all({
    host: Config.String("EMAIL_HOST").pipe(Config.withDefault("capture")),
    port: EmailPortSetting,
    user: Config.String("EMAIL_HOST_USER").pipe(Config.withDefault(""))
  }).pipe(Config.map(({ host, port, user }) => `smtp:${user}@${host}:${port}`))
})

export type LimitsOptions = Config.Success<typeof limitsConfig>

/** What the start-up line says of the limits and the ledger. */
export const describeLimits = (options: LimitsOptions) => {
  const rates = [...options.rates.map((rate) => rate.text), ...options.domains.map((rate) => rate.text)]
  const redis = Option.match(options.redisUrl, {
    onNone: () => null,
    onSome: (url) => redactUrl(Redacted.value(url))
  })
  return {
    rate_limit: rates.length === 0
      ? "off"
      : `${rates.join(", ")} ${redis === null ? "per process (REDIS_URL unset: each worker process enforces it alone)" : `shared through Redis ${redis}`}`,
    dedupe: options.dedupeStore === "off" ? "off" : `${options.dedupeStore}, kept ${Duration.format(options.dedupeTtl)}`,
    ...(redis === null ? {} : { redis_outage: options.onOutage })
  }
}

/** `smtp` within the limits, with the ledger and Redis' status, as configured. */
export const layerConfig = <E>(smtp: Layer.Layer<SmtpConnection | SmtpStatus, E>) =>
  Layer.unwrap(Effect.gen(function*() {
    const options = yield* limitsConfig
    const limited = options.rates.length + options.domains.length > 0
    if (!limited && options.dedupeStore === "off") return smtp
    const ledgerOptions = {
      ttl: options.dedupeTtl,
      storeId: `${options.prefix}sent`,
      messageIdHost: yield* MessageIdHostSetting,
      onOutage: options.onOutage,
      dependency: options.dedupeStore === "postgres" ? "database" as const : "redis" as const
    }
    const sqlLedger = options.dedupeStore === "postgres"
      ? SentLedger.layerSql(ledgerOptions).pipe(Layer.provide(PgClient.layer({ url: yield* DatabaseUrlSetting })))
      : Layer.empty
    // the limited connection replaces the one it is over; the pool's status stays
    const within = <R>(limiter: Layer.Layer<RateLimiter.RateLimiter, never, R>) =>
      limited ? RateLimitedSmtp.layer(options).pipe(Layer.provide(limiter), Layer.provideMerge(smtp)) : smtp
    if (Option.isNone(options.redisUrl)) return Layer.merge(within(RateLimiterStore.layerMemory), sqlLedger)
    const ledger = options.dedupeStore === "redis" ? SentLedger.layerRedis(ledgerOptions) : sqlLedger
    return Layer.merge(within(RateLimiterStore.layerRedis(`${options.prefix}rate:`, options.onOutage)), ledger).pipe(
      Layer.provideMerge(RedisConnection.layer({ url: options.redisUrl.value, onOutage: options.onOutage }))
    )
  }))
