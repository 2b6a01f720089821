/**
 * The ledger of sent emails: each Message-ID the SMTP server accepted, kept for `DEDUPE_TTL`, so that an event the
 * broker redelivers after a crash (or one requeued after a try) is recognised as sent and acknowledged without being
 * sent again. It is `effect/persistence`'s `BackingPersistence` with a time to live: in Redis (`REDIS_URL`), in
 * Postgres (`DEDUPE_STORE=postgres`, the `effect_persistence` table `db migrate` creates) or in memory (tests).
 *
 * A `Context.Reference` whose default is no ledger: the pipeline pays one lookup and a branch per event without it.
 */
import { Clock, Context, type Duration, Effect, Layer } from "effect"
import * as Persistence from "effect/persistence/Persistence"
import type * as Redis from "effect/persistence/Redis"
import type { SqlClient } from "effect/sql/SqlClient"
import type { EmailEvent } from "../domain/EmailEvent.ts"
import { Unavailable } from "../domain/errors.ts"
import { messageIdFor } from "../domain/MessageId.ts"
import { makeRedisFallback, redisUnavailable } from "./redisOutage.ts"

export interface SentLedgerShape {
  /** the Message-ID the email of `event` has (the builder's, from `EXTERNAL_HOST`) */
  readonly messageIdOf: (event: EmailEvent) => string
  /** whether `messageId` was sent within `DEDUPE_TTL` (a store that cannot answer: see `REDIS_OUTAGE`) */
  readonly wasSent: (messageId: string) => Effect.Effect<boolean, Unavailable>
  /** note `messageId` as sent, right after the server's 250 (alongside the ack) */
  readonly recordSent: (messageId: string) => Effect.Effect<void, Unavailable>
}

export const SentLedger = Context.Reference<SentLedgerShape | null>("email-senders/SentLedger", {
  defaultValue: () => null
})

/**
 * Check the ledger before sending only what may have been sent already: an event the broker redelivers (the worker
 * that had it may have crashed after the send), or one with `failed_tries` above 0 (a requeued event whose earlier
 * try may have reached the server before it failed). A first delivery costs nothing.
 */
export const mayHaveBeenSent = (redelivered: boolean, failedTries: number): boolean => redelivered || failedTries > 0

export interface SentLedgerOptions {
  /** `DEDUPE_TTL` */
  readonly ttl: Duration.Duration
  /** the store's name, under which its keys are kept (`REDIS_KEY_PREFIX` + `sent`) */
  readonly storeId: string
  /** `EXTERNAL_HOST` without its port: the right-hand side of the Message-IDs the builder makes */
  readonly messageIdHost: string
  /**
   * when the store cannot be reached: `fallback` skips the ledger (at-least-once, as without it) with a warning and
   * `email_senders_redis_fallbacks_total{use="ledger"}`; `stop` makes it an outage of `dependency`, waited out
   */
  readonly onOutage: "fallback" | "stop"
  readonly dependency: "redis" | "database"
}

/** The ledger on the `BackingPersistence` it is provided with. */
export const layer = (options: SentLedgerOptions): Layer.Layer<never, never, Persistence.BackingPersistence> =>
  Layer.effect(
    SentLedger,
    Effect.gen(function*() {
      const store = yield* (yield* Persistence.BackingPersistence).make(options.storeId)
      const fallback = makeRedisFallback("ledger", options.dependency === "redis" ? "Redis" : "the ledger's database")
      const unavailable = (error: { readonly message: string }) =>
        options.dependency === "redis"
          ? redisUnavailable(error)
          : new Unavailable({ message: `the ledger's database cannot be reached: ${error.message}`, dependency: "database" })
      const guarded = <A>(operation: Effect.Effect<A, Persistence.PersistenceError>, skipped: A) =>
        options.onOutage === "stop" ? Effect.mapError(operation, unavailable) : fallback(operation, Effect.succeed(skipped))
      return {
        messageIdOf: (event) => messageIdFor(event, options.messageIdHost),
        wasSent: (messageId) => guarded(Effect.map(store.get(messageId), (entry) => entry !== undefined), false),
        recordSent: (messageId) =>
          guarded(Effect.flatMap(Clock.currentTimeMillis, (sentAt) => store.set(messageId, { sentAt }, options.ttl)), undefined)
      } satisfies SentLedgerShape
    })
  )

/** In Redis, shared by every worker. */
export const layerRedis = (options: SentLedgerOptions): Layer.Layer<never, never, Redis.Redis> =>
  layer(options).pipe(Layer.provide(Persistence.layerBackingRedis))

/** In Postgres (`DATABASE_URL`), in the table `db migrate` creates. */
export const layerSql = (options: SentLedgerOptions): Layer.Layer<never, never, SqlClient> =>
  layer(options).pipe(Layer.provide(Persistence.layerBackingSql))

/** In memory: the double for tests, under `TestClock` too. */
export const layerMemory = (options: SentLedgerOptions): Layer.Layer<never> =>
  layer(options).pipe(Layer.provide(Persistence.layerBackingMemory))
