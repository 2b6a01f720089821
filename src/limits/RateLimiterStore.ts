/**
 * Where the rate limits are counted: `effect/persistence`'s Redis store (`REDIS_URL`), shared by every worker process,
 * or its in-memory store, per process. With `REDIS_OUTAGE=fallback` a Redis store falls back to the in-memory one
 * for as long as Redis cannot be reached (`redisOutage.ts`); with `stop` its failures reach the sender, which waits.
 */
import { Effect, Layer } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import type * as Redis from "effect/persistence/Redis"
import { makeRedisFallback } from "./redisOutage.ts"

/** Redis, under `prefix`, falling back to the process's memory while it cannot be reached. */
const withFallback = (prefix: string) =>
  Layer.effect(
    RateLimiter.RateLimiterStore,
    Effect.gen(function*() {
      const redis = yield* RateLimiter.makeStoreRedis({ prefix })
      const memory = yield* Effect.provide(Effect.service(RateLimiter.RateLimiterStore), RateLimiter.layerStoreMemory)
      const fallback = makeRedisFallback("rate_limit")
      return RateLimiter.RateLimiterStore.of({
        fixedWindow: (options) => fallback(redis.fixedWindow(options), memory.fixedWindow(options)),
        tokenBucket: (options) => fallback(redis.tokenBucket(options), memory.tokenBucket(options)),
        adaptiveConsume: (options) => fallback(redis.adaptiveConsume(options), memory.adaptiveConsume(options)),
        adaptiveFeedback: (options) => fallback(redis.adaptiveFeedback(options), memory.adaptiveFeedback(options))
      })
    })
  )

/** The store in Redis under `prefix` (`REDIS_KEY_PREFIX` + `rate:`), per `REDIS_OUTAGE`. */
export const layerRedis = (
  prefix: string,
  onOutage: "fallback" | "stop"
): Layer.Layer<RateLimiter.RateLimiter, never, Redis.Redis> =>
  RateLimiter.layer.pipe(
    Layer.provide(onOutage === "stop" ? RateLimiter.layerStoreRedis({ prefix }) : withFallback(prefix))
  )

/** The store in this process's memory: without `REDIS_URL`, each process enforces the limits alone. */
export const layerMemory: Layer.Layer<RateLimiter.RateLimiter> = RateLimiter.layer.pipe(
  Layer.provide(RateLimiter.layerStoreMemory)
)
