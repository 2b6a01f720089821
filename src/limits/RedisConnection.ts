/**
 * The Redis connection the limits and the ledger share (`REDIS_URL`), through `@effect/platform-node`'s `NodeRedis`
 * (node-redis), with its status for `/readyz`. Commands fail at once while the connection is down
 * (`disableOfflineQueue`) rather than wait in node-redis' queue, and a connection that goes 3 s without a reply (a
 * hung Redis) is dropped, so an email never waits on a dead Redis for longer: the guard of `redisOutage.ts` decides
 * what happens instead. node-redis reconnects by itself, with backoff up to 2 s.
 *
 * `NodeRedis`, and node-redis with it, is loaded (`import()`) only when Redis is used: node-redis builds its
 * command tables when it is loaded, several MB of heap that a worker without `REDIS_URL` would carry for nothing
 * (the bundle evaluates a module reached only through `import()` when it is imported).
 */
import { Effect, Layer, Redacted, References } from "effect"
import * as Redis from "effect/persistence/Redis"
import { redactUrl } from "../config/connectionSettings.ts"
import { RedisStatus } from "./RedisStatus.ts"

export interface RedisConnectionOptions {
  readonly url: Redacted.Redacted<string>
  readonly onOutage: "fallback" | "stop"
}

/** `@effect/platform-node`'s `NodeRedis` module, loaded when first asked for. */
export const loadNodeRedis = Effect.promise(() => import("@effect/platform-node/NodeRedis"))

const describe = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** Redis whose every command fails: what the worker runs on when Redis could not be reached at start (`fallback`). */
const unreachable = (problem: string) =>
  Layer.effect(
    Redis.Redis,
    Redis.make({
      send: () => Effect.fail(new Redis.RedisError({ cause: new Error(problem) })),
      subscribe: () => Effect.fail(new Redis.RedisError({ cause: new Error(problem) })),
      connect: Effect.fail(new Redis.RedisError({ cause: new Error(problem) }))
    })
  ).pipe(Layer.merge(Layer.succeed(RedisStatus, {
    snapshot: Effect.succeed({ reachable: false, problem, onOutage: "fallback" as const })
  })))

const connected = (options: RedisConnectionOptions) =>
  Layer.unwrap(Effect.map(loadNodeRedis, (NodeRedis) =>
    Layer.effect(
      RedisStatus,
      Effect.gen(function*() {
        const { client } = yield* NodeRedis.NodeRedis
        let problem: string | null = null
        client.on("error", (error: unknown) => {
          problem = describe(error)
        })
        client.on("ready", () => {
          problem = null
        })
        return {
          snapshot: Effect.sync(() => ({
            reachable: client.isReady,
            problem: client.isReady ? null : problem ?? "reconnecting",
            onOutage: options.onOutage
          }))
        }
      })
    ).pipe(Layer.provideMerge(
      NodeRedis.layer({
        url: Redacted.value(options.url),
        disableOfflineQueue: true,
        // a Redis that hangs (stopped, a dead host behind a live route) answers nothing: without a reply within
        // `socketTimeout` the connection is dropped, its commands fail and the guard takes over; the pings keep a
        // healthy idle connection from counting as silent
        pingInterval: 1_000,
        socket: { connectTimeout: 2_000, socketTimeout: 3_000 }
      }).pipe(
        // node-redis reports every reconnection attempt (NodeRedis logs each at WARN, every 2 s of an outage): the
        // outage is told once per use by `redisOutage.ts`, and its cause is in `/readyz`
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
      )
    ))
  ))

/**
 * Connected to `url`. Not reachable at start: with `REDIS_OUTAGE=fallback` the worker starts anyway, warning, on
 * per-process limits without the ledger until it is restarted; with `stop` it does not start.
 */
export const layer = (options: RedisConnectionOptions): Layer.Layer<Redis.Redis | RedisStatus, Redis.RedisError> =>
  connected(options).pipe(
    Layer.catch((error: Redis.RedisError) => {
      const problem = `could not connect to ${redactUrl(Redacted.value(options.url))}: ${describe(error.cause)}`
      return Layer.unwrap(
        options.onOutage === "stop"
          ? Effect.fail(error)
          : Effect.as(
            Effect.logWarning(`Redis ${problem}; starting without it (REDIS_OUTAGE=fallback): per-process rate limits, no duplicate ledger, until the worker restarts`),
            unreachable(problem)
          )
      )
    })
  )
