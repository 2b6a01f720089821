/**
 * The settings of the sending limits and the duplicate ledger (`src/limits/`): `EMAIL_RATE_LIMIT`,
 * `RATE_LIMIT_DOMAINS`, `REDIS_URL`, `REDIS_KEY_PREFIX`, `REDIS_OUTAGE`, `DEDUPE_STORE`, `DEDUPE_TTL`. A malformed
 * value stops the worker at start with one line naming the setting and what was expected.
 */
import { Config, ConfigProvider, Duration, Option, Redacted, Schema } from "effect"
import { urlProblem } from "./connectionSettings.ts"
import { DurationSetting } from "./settingValues.ts"

/** At most `limit` emails per `window`. */
export interface RateLimit {
  readonly limit: number
  readonly window: Duration.Duration
  /** as written in the setting, for log lines */
  readonly text: string
}

/** A limit for the recipients of one domain (`RATE_LIMIT_DOMAINS`). */
export interface DomainRateLimit extends RateLimit {
  readonly domain: string
}

const windows: Record<string, Duration.Duration> = {
  s: Duration.seconds(1),
  sec: Duration.seconds(1),
  second: Duration.seconds(1),
  min: Duration.minutes(1),
  minute: Duration.minutes(1),
  h: Duration.hours(1),
  hour: Duration.hours(1),
  day: Duration.days(1),
  d: Duration.days(1)
}

const rateLimitPattern = /^\s*(\d+)\s*\/\s*([a-z]+)\s*$/i

const expectedRate = "expected <count>/<s|min|h|day>, like 14/s, 600/min or 50000/day"

/** `14/s` as a limit, or the problem with it. */
export const parseRateLimit = (text: string): RateLimit | string => {
  const match = rateLimitPattern.exec(text)
  const window = match === null ? undefined : windows[match[2]!.toLowerCase()]
  if (match === null || window === undefined) return `${expectedRate}, not "${text.trim()}"`
  const limit = Number(match[1])
  if (!Number.isSafeInteger(limit) || limit < 1) return `${expectedRate}, with a count of at least 1, not "${text.trim()}"`
  return { limit, window, text: `${limit}/${match[2]!.toLowerCase()}` }
}

const domainPattern = /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/i

/** `gmail.com=5/s` as a domain limit, or the problem with it. */
export const parseDomainRateLimit = (text: string): DomainRateLimit | string => {
  const separator = text.indexOf("=")
  const domain = text.slice(0, Math.max(0, separator)).trim().toLowerCase()
  if (separator < 0 || !domainPattern.test(domain)) return `expected <domain>=<count>/<window>, like gmail.com=5/s, not "${text.trim()}"`
  const rate = parseRateLimit(text.slice(separator + 1))
  return typeof rate === "string" ? `${domain}: ${rate}` : { ...rate, domain, text: `${domain}=${rate.text}` }
}

/** A comma-separated list, each item parsed by `parse`; the first problem stops it. */
const listSetting = <A>(name: string, parse: (item: string) => A | string): Config.Config<ReadonlyArray<A>> => {
  const parseAll = (value: string): ReadonlyArray<A> | string => {
    const items: Array<A> = []
    for (const item of value.split(",")) {
      if (item.trim() === "") continue
      const parsed = parse(item)
      if (typeof parsed === "string") return parsed
      items.push(parsed)
    }
    return items
  }
  return Config.schema(
    Schema.String.check(Schema.makeFilter((value) => {
      const parsed = parseAll(value)
      return typeof parsed === "string" ? parsed : undefined
    })),
    name
  ).pipe(Config.map((value) => parseAll(value) as ReadonlyArray<A>))
}

/** `EMAIL_RATE_LIMIT`: `14/s,600/min,50000/day`, every one enforced (default none). */
export const EmailRateLimitSetting: Config.Config<ReadonlyArray<RateLimit>> = listSetting("EMAIL_RATE_LIMIT", parseRateLimit)
  .pipe(Config.withDefault([]))

/** `RATE_LIMIT_DOMAINS`: `gmail.com=5/s,outlook.com=3/s`, limits for the recipients of those domains (default none). */
export const RateLimitDomainsSetting: Config.Config<ReadonlyArray<DomainRateLimit>> = listSetting(
  "RATE_LIMIT_DOMAINS",
  parseDomainRateLimit
).pipe(Config.withDefault([]))

/** `REDIS_URL`: `redis://` or `rediss://` (default unset: limits per process, no ledger unless in Postgres). */
export const RedisUrlSetting: Config.Config<Option.Option<Redacted.Redacted<string>>> = Config.option(
  Config.schema(
    Schema.String.check(Schema.makeFilter((value) =>
      urlProblem(value, ["redis:", "rediss:"], { hostRequired: true, example: "redis://:password@host:6379/0" })
    )),
    "REDIS_URL"
  ).pipe(Config.map(Redacted.make))
)

/** `REDIS_KEY_PREFIX`: every key the worker writes in Redis starts with it (default `email-senders:`). */
export const RedisKeyPrefixSetting: Config.Config<string> = Config.NonEmptyString("REDIS_KEY_PREFIX").pipe(
  Config.withDefault("email-senders:")
)

/**
 * `REDIS_OUTAGE`: what sending does while Redis cannot be reached. `fallback` (the default): limits per process
 * and no ledger, with a warning and a metric; `stop`: sending waits for Redis, as for an SMTP outage.
 */
export const RedisOutageSetting: Config.Config<"fallback" | "stop"> = Config.schema(
  Schema.Literals(["fallback", "stop"]),
  "REDIS_OUTAGE"
).pipe(Config.withDefault("fallback" as const))

/**
 * `DEDUPE_STORE`: where the ledger of sent Message-IDs is kept: `redis` (the default when `REDIS_URL` is set),
 * `postgres` (`DATABASE_URL`, the table `db migrate` creates) or `off` (the default without `REDIS_URL`).
 */
export const DedupeStoreSetting: Config.Config<"redis" | "postgres" | "off"> = Config.all({
  store: Config.option(Config.schema(Schema.Literals(["redis", "postgres", "off"]), "DEDUPE_STORE")),
  redis: RedisUrlSetting
}).pipe(Config.flatMap(({ redis, store }) => {
  const chosen = Option.getOrElse(store, () => Option.isSome(redis) ? "redis" as const : "off" as const)
  return chosen === "redis" && Option.isNone(redis)
    ? Config.fail(new ConfigProvider.SourceError({ message: "DEDUPE_STORE=redis needs REDIS_URL" }))
    : Config.succeed(chosen)
}))

/** `DEDUPE_TTL`: how long a sent Message-ID stays in the ledger (default 7 days). */
export const DedupeTtlSetting: Config.Config<Duration.Duration> = DurationSetting("DEDUPE_TTL").pipe(
  Config.withDefault(Duration.days(7))
)
