/**
 * The Redis connection the limits and the ledger share (`REDIS_URL`), through `@effect/platform-node`'s `NodeRedis`
 * (node-redis), with its status for `/readyz`. Commands fail at once while the connection is down
 * (`disableOfflineQueue`) rather than wait in node-redis' queue, and a connection that goes 3 s without a reply (a
 * hung Redis) is dropped, so an email never waits on a dead Redis for longer: the guard of `redisOutage.ts` decides
 * what happens instead. A connection lost, however, is made again, with backoff up to 2 s, and one that could not be
 * made at start (`REDIS_OUTAGE=fallback`) is tried again every 2 s: the worker uses Redis as soon as it answers.
 *
 * `NodeRedis`, and node-redis with it, is loaded (`import()`) only when Redis is used: node-redis builds its
 * command tables when it is loaded, several MB of heap that a worker without `REDIS_URL` would carry for nothing
 * (the bundle evaluates a module reached only through `import()` when it is imported).
 */
import { Context, Effect, Exit, Layer, Redacted, Ref, References, Schedule, Scope } from "effect"
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

/** Redis whose every command fails: what the worker runs on while Redis could not be reached since start (`fallback`). */
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

/** node-redis' backoff before connecting again: 2^retries × 50 ms up to 2 s, and up to 200 ms of jitter. */
const reconnectDelay = (retries: number): number => Math.min(2 ** retries * 50, 2_000) + Math.floor(Math.random() * 200)

const connected = (options: RedisConnectionOptions) =>
  Layer.unwrap(Effect.map(loadNodeRedis, (NodeRedis) => {
    // the first connection fails at once, so that REDIS_OUTAGE decides at start; once made, a lost one is made again
    // for as long as it takes, also after a socket timeout (a hung Redis), on which NodeRedis' and node-redis' own
    // strategies give up for good. `established` is set once the layer holds the connected client (node-redis calls
    // the strategy from its socket's events, outside any fiber).
    let established = false
    const reconnectStrategy = (retries: number, cause: Error): number | Error => established ? reconnectDelay(retries) : cause
    return Layer.effect(
      RedisStatus,
      Effect.gen(function*() {
        const { client } = yield* NodeRedis.NodeRedis
        established = true
        // lost between connecting and now, it was given up as a first connection would be: it was not made
        if (!client.isOpen) return yield* new Redis.RedisError({ cause: new Error("the connection was lost as it was made") })
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
        socket: { connectTimeout: 2_000, socketTimeout: 3_000, reconnectStrategy }
      }).pipe(
        // node-redis reports every reconnection attempt (NodeRedis logs each at WARN, every 2 s of an outage): the
        // outage is told once per use by `redisOutage.ts`, and its cause is in `/readyz`
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))
      )
    ))
  }))

/** How often a Redis that could not be reached at start is tried again (`fallback`): as a lost connection is, at most. */
const connectAgainEvery = "2 seconds"

/**
 * Without Redis for now (`problem`), connecting in the background every 2 s until Redis answers, then on it: the
 * services given out stay the same, and send to whichever Redis is current.
 */
const connectedLater = (options: RedisConnectionOptions, problem: string) =>
  Layer.effectContext(Effect.gen(function*() {
    const scope = yield* Effect.scope
    const current = yield* Ref.make(yield* Layer.build(unreachable(problem)))
    // each attempt in a scope of its own, closed when it fails: a Redis down for days leaves no clients behind
    const attempt = Effect.gen(function*() {
      const attemptScope = yield* Scope.fork(scope)
      return yield* Layer.buildWithScope(connected(options), attemptScope).pipe(
        Effect.onError((cause) => Scope.close(attemptScope, Exit.failCause(cause)))
      )
    })
    yield* Effect.sleep(connectAgainEvery).pipe(
      Effect.andThen(Effect.retry(attempt, Schedule.spaced(connectAgainEvery))),
      Effect.flatMap((connection) => Ref.set(current, connection)),
      Effect.andThen(Effect.logInfo(`Redis ${redactUrl(Redacted.value(options.url))} can be reached now: the worker uses it from now on`)),
      Effect.forkIn(scope)
    )
    const redis = Effect.map(Ref.get(current), Context.get(Redis.Redis))
    return Context.make(Redis.Redis, Redis.Redis.of({
      send: (command, ...args) => Effect.flatMap(redis, (service) => service.send(command, ...args)),
      subscribe: (channel) => Effect.flatMap(redis, (service) => service.subscribe(channel)),
      eval: (script) => (...params) => Effect.flatMap(redis, (service) => service.eval(script)(...params)),
      reserve: Effect.flatMap(redis, (service) => service.reserve)
    })).pipe(Context.add(RedisStatus, {
      snapshot: Effect.flatMap(Ref.get(current), (connection) => Context.get(connection, RedisStatus).snapshot)
    }))
  }))

/**
 * Connected to `url`. Not reachable at start: with `REDIS_OUTAGE=fallback` the worker starts anyway, warning, on
 * per-process limits without the ledger until Redis can be reached (tried every 2 s); with `stop` it does not start.
 */
export const layer = (options: RedisConnectionOptions): Layer.Layer<Redis.Redis | RedisStatus, Redis.RedisError> =>
  connected(options).pipe(
    Layer.catch((error: Redis.RedisError) => {
      const problem = `could not connect to ${redactUrl(Redacted.value(options.url))}: ${describe(error.cause)}`
      return Layer.unwrap(
        options.onOutage === "stop"
          ? Effect.fail(error)
          : Effect.as(
            Effect.logWarning(`Redis ${problem}; starting without it (REDIS_OUTAGE=fallback): per-process rate limits, no duplicate ledger, until it can be reached (tried every ${connectAgainEvery})`),
            connectedLater(options, problem)
          )
      )
    })
  )
