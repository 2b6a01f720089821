/**
 * The limits and the ledger on the machine's Redis (a key prefix of each test's) and Postgres (a schema of this
 * run's, migrated by `db migrate`'s code): one limit shared by two limiters as by two processes, the ledger's entries
 * and their time to live, Redis unreachable at start (and used once it is up), hung and resumed, going away, and the
 * settings' errors.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Redacted } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as Redis from "effect/persistence/Redis"
import { SqlClient } from "effect/sql"
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { limitsConfig } from "../src/limits/liveLimits.ts"
import * as RateLimiterStore from "../src/limits/RateLimiterStore.ts"
import * as RedisConnection from "../src/limits/RedisConnection.ts"
import { RedisStatus } from "../src/limits/RedisStatus.ts"
import * as SentLedger from "../src/limits/SentLedger.ts"
import * as RateLimitedSmtp from "../src/limits/RateLimitedSmtp.ts"
import type { OutgoingEmail } from "../src/domain/OutgoingEmail.ts"
import { InMemorySmtp } from "../src/smtp/InMemorySmtp.ts"
import { SmtpConnection } from "../src/smtp/SmtpConnection.ts"
import { migrateDatabase } from "../src/realms/migrateDatabase.ts"
import { closedPort } from "./support/fakeSes.ts"
import { ownRedis, ownRedisNotStarted, redisKeys } from "./faults/support/redisServer.ts"

const redisUrl = Redacted.make("redis://127.0.0.1:6379")
const redisCli = (...args: Array<string>) => execFileSync("redis-cli", ["-p", "6379", ...args], { encoding: "utf8" }).trim()

/** A prefix of this test's own; its keys are deleted when the test ends. */
const testPrefix = Effect.acquireRelease(
  Effect.sync(() => `es-test-${randomUUID().slice(0, 12)}`),
  (prefix) =>
    Effect.sync(() => {
      const keys = redisCli("--scan", "--pattern", `${prefix}*`).split("\n").filter((key) => key !== "")
      if (keys.length > 0) redisCli("del", ...keys)
    })
)

const redis = (onOutage: "fallback" | "stop" = "fallback") => RedisConnection.layer({ url: redisUrl, onOutage })

/** A limiter of its own on the shared store, as a second worker process has. */
const limiterOn = (prefix: string) =>
  Layer.build(RateLimiterStore.layerRedis(`${prefix}:rate:`, "fallback").pipe(Layer.provide(redis()))).pipe(
    Effect.map((context) => context.mapUnsafe.get(RateLimiter.RateLimiter.key) as RateLimiter.RateLimiter)
  )

/** A Redis whose every command fails, as one that went away. */
const failing = Layer.effect(
  Redis.Redis,
  Redis.make({
    send: () => Effect.fail(new Redis.RedisError({ cause: new Error("connection refused") })),
    subscribe: () => Effect.fail(new Redis.RedisError({ cause: new Error("connection refused") })),
    connect: Effect.fail(new Redis.RedisError({ cause: new Error("connection refused") }))
  })
)


describe("rate limit in Redis", () => {
  it.live("two limiters (two processes) on one account share one token bucket", () =>
    Effect.gen(function*() {
      const prefix = yield* testPrefix
      const first = yield* limiterOn(prefix)
      const second = yield* limiterOn(prefix)
      const take = (limiter: RateLimiter.RateLimiter) =>
        limiter.consume({ key: "smtp:acct", algorithm: "token-bucket", limit: 10, window: "1 minute", onExceeded: "delay" })
      const delays: Array<number> = []
      for (let i = 0; i < 10; i++) delays.push(Duration.toMillis((yield* take(i % 2 === 0 ? first : second)).delay))
      // the bucket of 10 is spent between the two: the 11th waits a refill (6 s), whichever asks
      assert.deepStrictEqual(delays, Array(10).fill(0))
      assert.isAbove(Duration.toMillis((yield* take(second)).delay), 5_000)
    }).pipe(Effect.scoped))

  it.live("a throttling feedback of one limiter puts the other in cooldown", () =>
    Effect.gen(function*() {
      const prefix = yield* testPrefix
      const first = yield* limiterOn(prefix)
      const second = yield* limiterOn(prefix)
      const options = { key: "smtp:acct:throttling", tokens: 1, fallbackLimit: 10, fallbackWindow: Duration.seconds(1) }
      const { epoch } = yield* first.adaptiveConsume(options)
      yield* first.adaptiveFeedback({ key: options.key, epoch, tokens: 1, status: 429, retryAfter: Duration.seconds(1) })
      const seen = yield* second.adaptiveConsume(options)
      assert.strictEqual(seen.phase, "cooldown")
      assert.isAbove(Duration.toMillis(seen.delay), 500)
    }).pipe(Effect.scoped))
})

/** Wait until `status` says Redis is `reachable` (or not): 30 s at most, on a loaded machine. */
const reachableWithin30s = (status: Effect.Effect<{ readonly reachable: boolean }>, reachable: boolean) =>
  Effect.gen(function*() {
    for (let tries = 0; (yield* status).reachable !== reachable; tries++) {
      if (tries > 150) assert.fail(`Redis not ${reachable ? "reachable" : "unreachable"} after 30 s`)
      yield* Effect.sleep("200 millis")
    }
  })

describe("Redis unreachable", () => {
  it.live("at start, REDIS_OUTAGE=fallback: the worker starts, Redis shown unreachable, the limits per process", () =>
    Effect.gen(function*() {
      const url = Redacted.make(`redis://127.0.0.1:${yield* closedPort}`)
      const context = yield* Layer.build(
        Layer.merge(RateLimiterStore.layerRedis("x:", "fallback"), Layer.empty).pipe(
          Layer.provideMerge(RedisConnection.layer({ url, onOutage: "fallback" }))
        )
      )
      const status = yield* RedisStatus.pipe(Effect.flatMap((s) => s.snapshot), Effect.provide(context))
      assert.isFalse(status.reachable)
      assert.include(status.problem ?? "", "could not connect")
      const limiter = context.mapUnsafe.get(RateLimiter.RateLimiter.key) as RateLimiter.RateLimiter
      const result = yield* limiter.consume({ key: "k", algorithm: "token-bucket", limit: 1, window: "1 minute", onExceeded: "delay" })
      assert.strictEqual(Duration.toMillis(result.delay), 0, "the in-memory fallback answers")
      const again = yield* limiter.consume({ key: "k", algorithm: "token-bucket", limit: 1, window: "1 minute", onExceeded: "delay" })
      assert.isAbove(Duration.toMillis(again.delay), 0, "and limits")
    }).pipe(Effect.scoped))

  it.live("at start, REDIS_OUTAGE=fallback, Redis started afterwards: the worker connects to it, then the limits and the ledger use it", () =>
    Effect.gen(function*() {
      const server = yield* ownRedisNotStarted
      const context = yield* Layer.build(
        Layer.merge(RateLimiterStore.layerRedis("late:rate:", "fallback"), SentLedger.layerRedis(ledgerOptions("late:sent"))).pipe(
          Layer.provideMerge(RedisConnection.layer({ url: Redacted.make(server.url), onOutage: "fallback" }))
        )
      )
      const status = RedisStatus.pipe(Effect.flatMap((s) => s.snapshot), Effect.provide(context))
      assert.isFalse((yield* status).reachable)
      yield* server.start
      // tried again every 2 s
      yield* reachableWithin30s(status, true)
      const limiter = context.mapUnsafe.get(RateLimiter.RateLimiter.key) as RateLimiter.RateLimiter
      yield* limiter.consume({ key: "k", algorithm: "token-bucket", limit: 10, window: "1 minute", onExceeded: "delay" })
      const ledger = yield* Effect.provide(Effect.service(SentLedger.SentLedger), context)
      yield* ledger!.recordSent("<late@example.test>")
      assert.isTrue(yield* ledger!.wasSent("<late@example.test>"))
      assert.isNotEmpty(yield* redisKeys(server.port, "late:rate:*"), "the limit is counted in Redis")
      assert.isNotEmpty(yield* redisKeys(server.port, "late*sent*"), "the ledger is kept in Redis")
    }).pipe(Effect.scoped))

  it.live("hung (SIGSTOP) then resumed: the connection that timed out is made again", () =>
    Effect.gen(function*() {
      const server = yield* ownRedis
      const context = yield* Layer.build(RedisConnection.layer({ url: Redacted.make(server.url), onOutage: "fallback" }))
      const status = RedisStatus.pipe(Effect.flatMap((s) => s.snapshot), Effect.provide(context))
      yield* server.hang
      // no reply for 3 s (socketTimeout): dropped
      yield* reachableWithin30s(status, false)
      yield* server.resume
      yield* reachableWithin30s(status, true)
      assert.strictEqual(yield* Redis.Redis.use((redis) => redis.send("PING")).pipe(Effect.provide(context)), "PONG")
    }).pipe(Effect.scoped))

  it.live("at start, REDIS_OUTAGE=stop: it does not start", () =>
    Effect.gen(function*() {
      const url = Redacted.make(`redis://127.0.0.1:${yield* closedPort}`)
      const exit = yield* Effect.exit(Layer.build(RedisConnection.layer({ url, onOutage: "stop" })))
      assert.strictEqual(exit._tag, "Failure")
    }).pipe(Effect.scoped))

  it.live("sending with REDIS_OUTAGE=stop: Redis down is an outage of redis, and nothing is sent", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        RateLimitedSmtp.layer({ rates: [{ limit: 10, window: Duration.seconds(1), text: "10/s" }], domains: [], account: "smtp:test" }).pipe(
          Layer.provide(RateLimiterStore.layerRedis("x:", "stop").pipe(Layer.provide(failing))),
          Layer.provideMerge(InMemorySmtp.layer)
        )
      )
      const message = { messageId: "<stop@example.test>", envelope: { from: "a@example.test", to: ["b@example.test"] } } as unknown as OutgoingEmail
      const error = yield* Effect.flip(SmtpConnection.use((smtp) => smtp.send(message)).pipe(Effect.provide(context)))
      assert.strictEqual(error._tag, "Unavailable")
      assert.strictEqual(error._tag === "Unavailable" ? error.dependency : null, "redis")
      assert.strictEqual((yield* InMemorySmtp.use((smtp) => smtp.sent).pipe(Effect.provide(context))).length, 0)
    }).pipe(Effect.scoped))

  it.live("ledger with REDIS_OUTAGE=stop: an unreachable store is an outage of redis; with fallback, skipped", () =>
    Effect.gen(function*() {
      const options = { ttl: Duration.days(7), storeId: "x:sent", messageIdHost: "example.test", dependency: "redis" as const }
      const stop = yield* SentLedger.SentLedger.pipe(Effect.provide(SentLedger.layerRedis({ ...options, onOutage: "stop" }).pipe(Layer.provide(failing))))
      const error = yield* Effect.flip(stop!.wasSent("<a@example.test>"))
      assert.strictEqual(error.dependency, "redis")
      const fallback = yield* SentLedger.SentLedger.pipe(Effect.provide(SentLedger.layerRedis({ ...options, onOutage: "fallback" }).pipe(Layer.provide(failing))))
      assert.isFalse(yield* fallback!.wasSent("<a@example.test>"))
      yield* fallback!.recordSent("<a@example.test>")
    }).pipe(Effect.scoped))
})

const ledgerOptions = (storeId: string) => ({
  ttl: Duration.seconds(30),
  storeId,
  messageIdHost: "example.test",
  onOutage: "fallback" as const,
  dependency: "redis" as const
})

/** The ledger of `layer`, alive until the test's scope closes. */
const built = <E>(layer: Layer.Layer<never, E>) =>
  Effect.flatMap(Layer.build(layer), (context) =>
    Effect.flatMap(Effect.provide(Effect.service(SentLedger.SentLedger), context), (ledger) =>
      ledger === null ? Effect.die(new Error("no ledger")) : Effect.succeed(ledger)))

describe("ledger", () => {
  it.live("in Redis: a recorded Message-ID is found by another worker, and expires after DEDUPE_TTL", () =>
    Effect.gen(function*() {
      const prefix = yield* testPrefix
      const ledger = () => built(SentLedger.layerRedis(ledgerOptions(`${prefix}:sent`)).pipe(Layer.provide(redis())))
      const writer = yield* ledger()
      const reader = yield* ledger()
      assert.isFalse(yield* reader.wasSent("<one@example.test>"))
      yield* writer.recordSent("<one@example.test>")
      assert.isTrue(yield* reader.wasSent("<one@example.test>"))
      const [key] = redisCli("--scan", "--pattern", `${prefix}*`).split("\n")
      const ttl = Number(redisCli("pttl", key!))
      assert.isAbove(ttl, 25_000)
      assert.isAtMost(ttl, 30_000)
    }).pipe(Effect.scoped))

  it.live("in Postgres: the table db migrate creates holds it", () =>
    Effect.gen(function*() {
      const schema = `es_ledger_${randomUUID().replaceAll("-", "").slice(0, 12)}`
      const admin = PgClient.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:5432/test") })
      yield* Effect.acquireRelease(
        SqlClient.SqlClient.use((sql) => sql`CREATE SCHEMA ${sql(schema)}`),
        () => SqlClient.SqlClient.use((sql) => sql`DROP SCHEMA ${sql(schema)} CASCADE`).pipe(Effect.provide(admin), Effect.orDie)
      ).pipe(Effect.provide(admin))
      const database = PgClient.layer({
        url: Redacted.make("postgres://postgres@127.0.0.1:5432/test"),
        startupParameters: { search_path: schema }
      })
      yield* migrateDatabase.pipe(Effect.provide(database))
      const ledger = yield* built(SentLedger.layerSql({ ...ledgerOptions("sent"), dependency: "database" }).pipe(Layer.provide(database)))
      assert.isFalse(yield* ledger.wasSent("<pg@example.test>"))
      yield* ledger.recordSent("<pg@example.test>")
      assert.isTrue(yield* ledger.wasSent("<pg@example.test>"))
      const rows = yield* SqlClient.SqlClient.use((sql) => sql<{ readonly id: string }>`SELECT id FROM effect_persistence`).pipe(Effect.provide(database))
      assert.deepStrictEqual(rows.map((row) => row.id), ["<pg@example.test>"])
    }).pipe(Effect.scoped))
})

describe("settings", () => {
  const read = (env: Record<string, string>) =>
    Effect.result(limitsConfig.parse(ConfigProvider.fromEnv({ env })))

  it.effect("rate limits, domains and the ledger's defaults; clear errors naming the setting", () =>
    Effect.gen(function*() {
      const ok = yield* read({ EMAIL_RATE_LIMIT: "14/s,600/min", RATE_LIMIT_DOMAINS: "gmail.com=5/s", REDIS_URL: "redis://127.0.0.1:6379" })
      assert.strictEqual(ok._tag, "Success")
      if (ok._tag === "Success") {
        assert.deepStrictEqual(ok.success.rates.map((rate) => rate.text), ["14/s", "600/min"])
        assert.deepStrictEqual(ok.success.domains.map((rate) => rate.text), ["gmail.com=5/s"])
        assert.strictEqual(ok.success.dedupeStore, "redis")
        assert.strictEqual(ok.success.onOutage, "fallback")
      }
      for (const [env, expected] of [
        [{ EMAIL_RATE_LIMIT: "14/s,lots" }, "EMAIL_RATE_LIMIT"],
        [{ RATE_LIMIT_DOMAINS: "gmail.com" }, "RATE_LIMIT_DOMAINS"],
        [{ DEDUPE_STORE: "redis" }, "DEDUPE_STORE=redis needs REDIS_URL"],
        [{ REDIS_URL: "http://127.0.0.1" }, "REDIS_URL"],
        [{ REDIS_URL: "redis//:s3cret-pw@127.0.0.1" }, "the value is not shown"],
        [{ REDIS_OUTAGE: "ignore" }, "REDIS_OUTAGE"]
      ] as const) {
        const result = yield* read(env)
        assert.strictEqual(result._tag, "Failure", JSON.stringify(env))
        if (result._tag === "Failure") {
          assert.include(result.failure.message, expected)
          assert.notInclude(result.failure.message, "s3cret")
        }
      }
    }))
})
