/**
 * What the limits and the ledger do when a Redis operation fails (`REDIS_OUTAGE`). With `fallback` the operation is
 * done without Redis (a per-process limit, a ledger check or write skipped): counted in
 * `email_senders_redis_fallbacks_total{use}`, with one warning when Redis goes away and one line when it is back, so
 * a long outage does not log a line per email. With `stop` it is an outage (`Unavailable`), which the pipeline waits
 * out as it waits for SMTP.
 */
import { Effect, Metric, Ref } from "effect"
import { Unavailable } from "../domain/errors.ts"
import { redisFallbacks } from "../pipeline/metrics.ts"

export type RedisUse = "rate_limit" | "ledger"

const consequences: Record<RedisUse, string> = {
  rate_limit: "each worker process now enforces EMAIL_RATE_LIMIT alone (the limit is no longer shared)",
  ledger: "the duplicate ledger is skipped: a crash may now send an email twice"
}

/** `primary`, or when it fails, `fallback`, noted as above. */
export type RedisFallback = <A, E extends { readonly message: string }, B, E2 = never>(
  primary: Effect.Effect<A, E>,
  fallback: Effect.Effect<B, E2>
) => Effect.Effect<A | B, E2>

/** `store`: what cannot be reached, as the lines name it (Redis, or the ledger's Postgres) */
/** The error's message, with the innermost cause's (the socket's `ECONNREFUSED`) when it wraps one. */
const describe = (error: { readonly message: string }): string => {
  let inner: unknown = error
  for (let depth = 0; depth < 5; depth++) {
    if (typeof inner !== "object" || inner === null) break
    // RateLimiterError holds its store's error as `reason`; the others hold theirs as `cause`
    const next: unknown = ("reason" in inner && inner.reason) || ("cause" in inner && inner.cause) || undefined
    if (next === undefined) break
    inner = next
  }
  return inner instanceof Error && inner !== error && inner.message !== "" ? `${error.message}: ${inner.message}` : error.message
}

export const makeRedisFallback = (use: RedisUse, store = "Redis"): RedisFallback => {
  // whether Redis is away for this use, as every fiber using it sees it: the warning and the line it is back once each
  const degraded = Ref.makeUnsafe(false)
  const counted = Metric.update(Metric.withAttributes(redisFallbacks, { use }), 1)
  const wentAway = (error: { readonly message: string }) =>
    Effect.flatMap(Ref.getAndSet(degraded, true), (was) =>
      was ? counted : Effect.andThen(Effect.logWarning(`${store} cannot be reached (${describe(error)}): ${consequences[use]}`), counted))
  const cameBack = <A>(value: A) =>
    Effect.flatMap(Ref.getAndSet(degraded, false), (was) =>
      was
        ? Effect.as(Effect.logInfo(`${store} is back: ${use === "rate_limit" ? "the rate limit is shared again" : "the duplicate ledger is in use again"}`), value)
        : Effect.succeed(value))
  return (primary, fallback) =>
    Effect.matchEffect(primary, {
      onFailure: (error) => Effect.andThen(wentAway(error), fallback),
      onSuccess: cameBack
    })
}

/** With `REDIS_OUTAGE=stop`: a failed Redis operation is an outage, waited out like SMTP's. */
export const redisUnavailable = (error: { readonly message: string }): Unavailable =>
  new Unavailable({ message: `Redis cannot be reached: ${error.message}`, dependency: "redis" })
